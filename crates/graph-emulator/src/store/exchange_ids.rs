//! Exchange-shaped item ids, folder ids and change keys for one mailbox, so that what a client
//! stores about them (its state file, an id compression) is measured against realistic strings.
//!
//! The layout is what real Graph ids decode to (base64 of the EWS id; samples below):
//!
//! ```text
//! item id  = 00 03 | u16 LE 36 | mailbox GUID as 36 ASCII chars | 00 | u16 LE 70 | entry id
//! entry id = 00 00 00 00 | store provider UID (16) | 07 00 (message) | folder: replica GUID (16)
//!            + GLOBCNT (6, big-endian) + 00 00 | item: replica GUID (16) + GLOBCNT (6) + 00 00
//! folder id: the same with 01 00 (folder), entry id length 46 and no item part
//! changeKey = 11 00 00 00 | 16 00 00 00 | replica GUID (16) | change number (6, big-endian)
//! ```
//!
//! Ids are base64 with `/` written `-` and `+` written `_` (Graph's "REST id" alphabet: the same
//! GUID reads `T5e/T7Kz` in a changeKey and `T5e-T7Kz` in the id next to it), keeping the `=`
//! padding, so a contact id is 152 characters ending `AAA=`; changeKeys keep plain base64 and are
//! 40 characters starting `EQAAABYAAA` (then `A`–`D`, from the replica GUID's first byte). Everything but the item's GLOBCNT is the same for every
//! item of a folder, so ids in one folder share ~144 leading characters. GLOBCNTs and change
//! numbers come from one counter per mailbox that only grows, by small steps, as Exchange's
//! does. Sources: contact-get.md's sample (`AAMkAGVmMDEzMTM4…AAAYbuK-AAA=`, changeKey
//! `EQAAABYAAAAiIsqMbYjsT5e/T7KzowPTAAAYc8Bf`, default Contacts folder `…AAAAAAEOAAA=`); a live
//! v1.0 PATCH answer recorded in a third-party client's source (2017, mailbox `ef077b32-…`,
//! changeKey `EQAAABYAAAA2tDFF…`); the beta user-post-contacts.md and contact-update.md samples,
//! one contact after its create and after an update (change number `…AAAve7fW` → `…AAAve7fh`,
//! +11 for one write); the root folder `…AAAAAAEIAAA=` (GLOBCNT 0x108) is the parent of
//! top-level folders in many EWS and Graph captures; event ids show the `+` → `_` half of the
//! alphabet next to their changeKeys (microsoft-graph-docs#14632).
//!
//! Clients must treat ids as opaque: the emulator produces this shape, it never parses a
//! client's id to decide anything except which counter values are already taken. Pure
//! computation: no store, no HTTP, no clock; randomness only through the caller's generator.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use sha2::Digest as _;

/// EWS id storage type "mailbox item, mailbox GUID based" and the GUID's length (36 chars).
const HEADER: [u8; 4] = [0x00, 0x03, 0x24, 0x00];
/// Entry id types: a private store message, a private store folder.
const MESSAGE: [u8; 2] = [0x07, 0x00];
const FOLDER: [u8; 2] = [0x01, 0x00];
/// changeKey prefix of a contact: `EQAAABYAAAA` (messages are `CQAAABYAAAA`, 0x09).
const CONTACT_CHANGE_KEY: [u8; 8] = [0x11, 0, 0, 0, 0x16, 0, 0, 0];
/// Well-known folder GLOBCNTs: the root of the mailbox's folders and the default Contacts folder.
const ROOT_GLOBCNT: u64 = 0x108;
const CONTACTS_GLOBCNT: u64 = 0x10e;
const GLOBCNT_MAX: u64 = (1 << 48) - 1;

/// The per-mailbox parts of ids and change keys, and the mailbox's GLOBCNT counter.
#[derive(Debug, Clone)]
pub struct MailboxIds {
    /// The mailbox GUID, as the 36 ASCII characters the id carries.
    mailbox_guid: [u8; 36],
    /// The store's MAPI provider UID.
    provider: [u8; 16],
    /// The replica GUID new items and changes are stamped with.
    replica: [u8; 16],
    /// The next free GLOBCNT (item ids, folder ids and change numbers share it).
    next: u64,
}

/// A folder's part of an item id: its replica GUID and GLOBCNT.
type FolderPart = ([u8; 16], u64);

fn digest(label: &str, key: &str) -> [u8; 32] {
    sha2::Sha256::digest(format!("{label}:{key}").as_bytes()).into()
}

fn first16(d: [u8; 32]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b
}

fn globcnt_bytes(g: u64) -> [u8; 6] {
    let b = g.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

fn globcnt_of(b: &[u8]) -> u64 {
    b.iter().fold(0, |acc, x| (acc << 8) | u64::from(*x))
}

/// Base64 in Graph's id alphabet (`/` → `-`, `+` → `_`, padding kept).
fn encode_id(bytes: &[u8]) -> String {
    STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '/' => '-',
            '+' => '_',
            c => c,
        })
        .collect()
}

fn decode_id(id: &str) -> Option<Vec<u8>> {
    let std: String = id
        .chars()
        .map(|c| match c {
            '-' => '/',
            '_' => '+',
            c => c,
        })
        .collect();
    STANDARD.decode(std).ok()
}

/// The parts of an id of this layout.
struct Decoded {
    mailbox_guid: Vec<u8>,
    folder: FolderPart,
    item: Option<u64>,
}

fn decode(id: &str) -> Option<Decoded> {
    let b = decode_id(id)?;
    let rest = b.strip_prefix(&HEADER[..])?;
    let (guid, rest) = rest.split_at_checked(36)?;
    let rest = rest.strip_prefix(&[0x00][..])?;
    let (len, rest) = rest.split_at_checked(2)?;
    let entry = rest.get(..usize::from(u16::from_le_bytes([len[0], len[1]])))?;
    // flags (4) + provider (16) + type (2), then the folder part (24), then maybe the item (24).
    let kind = entry.get(20..22)?;
    let part = |at: usize| -> Option<([u8; 16], u64)> {
        let p = entry.get(at..at + 24)?;
        let mut g = [0u8; 16];
        g.copy_from_slice(&p[..16]);
        Some((g, globcnt_of(&p[16..22])))
    };
    let folder = part(22)?;
    let item = match (kind, entry.len()) {
        (k, 70) if k == MESSAGE => Some(part(46)?.1),
        (k, 46) if k == FOLDER => None,
        _ => return None,
    };
    Some(Decoded {
        mailbox_guid: guid.to_vec(),
        folder,
        item,
    })
}

impl MailboxIds {
    /// The id parts of the mailbox of the user with this object id. They depend on the user id
    /// only, so the default folder keeps its id across an export and replay (the scenario format
    /// has no place for it); the counter starts somewhere realistic (10⁷–10¹⁰).
    pub fn for_user(user_id: &str) -> Self {
        let g = first16(digest("mailbox", user_id));
        let guid = uuid::Builder::from_random_bytes(g)
            .into_uuid()
            .hyphenated()
            .to_string();
        let mut mailbox_guid = [0u8; 36];
        mailbox_guid.copy_from_slice(guid.as_bytes());
        let start = digest("globcnt", user_id);
        let start = u64::from_be_bytes(start[..8].try_into().unwrap_or_default());
        MailboxIds {
            mailbox_guid,
            provider: first16(digest("store", user_id)),
            replica: first16(digest("replica", user_id)),
            next: 0x100_0000 + start % 0x2_0000_0000,
        }
    }

    fn entry_head(&self, len: u16, kind: [u8; 2]) -> Vec<u8> {
        let mut b = Vec::with_capacity(4 + 36 + 3 + usize::from(len));
        b.extend_from_slice(&HEADER);
        b.extend_from_slice(&self.mailbox_guid);
        b.push(0x00);
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(&self.provider);
        b.extend_from_slice(&kind);
        b
    }

    fn folder_id_at(&self, globcnt: u64) -> String {
        let mut b = self.entry_head(46, FOLDER);
        push_part(&mut b, &self.replica, globcnt);
        encode_id(&b)
    }

    /// The id of the root of the mailbox's folders (`…AAAAAAEIAAA=`).
    pub fn root_folder_id(&self) -> String {
        self.folder_id_at(ROOT_GLOBCNT)
    }

    /// The id of the default Contacts folder (`…AAAAAAEOAAA=`).
    pub fn default_folder_id(&self) -> String {
        self.folder_id_at(CONTACTS_GLOBCNT)
    }

    /// Takes the next GLOBCNT. The counter moves by 1–16 (other items and changes of the
    /// mailbox take values between two of ours), and now and then by up to 65,536 (mail arriving
    /// between two writes), so ids of one folder differ in their last 2–4 significant
    /// characters rather than always the same one or two: measurements of a client's id
    /// compression must not come out better than a real mailbox would let them.
    fn allocate(&mut self, rng: &mut impl Rng) -> u64 {
        let g = self.next;
        let step = if rng.random_ratio(1, 16) {
            rng.random_range(17..=65_536)
        } else {
            rng.random_range(1..=16)
        };
        self.next = (self.next + step).min(GLOBCNT_MAX);
        g
    }

    /// A new folder's id.
    pub fn new_folder_id(&mut self, rng: &mut impl Rng) -> String {
        let g = self.allocate(rng);
        self.folder_id_at(g)
    }

    /// A new item's id in the folder with id `folder_id`. A folder id of another shape (a
    /// scenario may name folders freely) gets a folder part derived from it, so its items still
    /// share a prefix.
    pub fn new_item_id(&mut self, folder_id: &str, rng: &mut impl Rng) -> String {
        let folder = match decode(folder_id) {
            Some(d) if d.item.is_none() => d.folder,
            _ => {
                let d = digest("folder", folder_id);
                let g = globcnt_of(&d[16..22]);
                (first16(d), g)
            }
        };
        let g = self.allocate(rng);
        let mut b = self.entry_head(70, MESSAGE);
        push_part(&mut b, &folder.0, folder.1);
        push_part(&mut b, &self.replica, g);
        encode_id(&b)
    }

    /// A new contact change key: this mailbox's replica GUID and the next change number.
    pub fn new_change_key(&mut self, rng: &mut impl Rng) -> String {
        let cn = self.allocate(rng);
        let mut b = Vec::with_capacity(30);
        b.extend_from_slice(&CONTACT_CHANGE_KEY);
        b.extend_from_slice(&self.replica);
        b.extend_from_slice(&globcnt_bytes(cn));
        STANDARD.encode(b)
    }

    /// Notes an id loaded from a scenario (an exported state): when it is one of this mailbox's,
    /// the counter moves past it, so nothing allocated later can repeat it.
    pub fn observe_id(&mut self, id: &str) {
        let Some(d) = decode(id) else { return };
        if d.mailbox_guid != self.mailbox_guid {
            return;
        }
        let g = d.item.unwrap_or(d.folder.1);
        self.next = self.next.max(g.saturating_add(1).min(GLOBCNT_MAX));
    }

    /// Notes a loaded change key: the next change number of this mailbox is past it, so a later
    /// write can never give an item back a change key it had.
    pub fn observe_change_key(&mut self, change_key: &str) {
        let Ok(b) = STANDARD.decode(change_key) else {
            return;
        };
        if b.len() == 30 && b[..8] == CONTACT_CHANGE_KEY && b[8..24] == self.replica {
            let cn = globcnt_of(&b[24..30]);
            self.next = self.next.max(cn.saturating_add(1).min(GLOBCNT_MAX));
        }
    }
}

fn push_part(b: &mut Vec<u8>, guid: &[u8; 16], globcnt: u64) {
    b.extend_from_slice(guid);
    b.extend_from_slice(&globcnt_bytes(globcnt));
    b.extend_from_slice(&[0, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn common_prefix(a: &str, b: &str) -> usize {
        a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
    }

    #[test]
    fn the_real_samples_decode_with_this_layout() {
        // contact-get.md's contact and its default Contacts folder.
        let id = "AAMkAGVmMDEzMTM4LTZmYWUtNDdkNC1hMDZiLTU1OGY5OTZhYmY4OABGAAAAAAAiQ8W967B7TKBjgx9rVEURBwAiIsqMbYjsT5e-T7KzowPTAAAAAAEOAAAiIsqMbYjsT5e-T7KzowPTAAAYbuK-AAA=";
        let folder = "AAMkAGVmMDEzMTM4LTZmYWUtNDdkNC1hMDZiLTU1OGY5OTZhYmY4OAAuAAAAAAAiQ8W967B7TKBjgx9rVEURAQAiIsqMbYjsT5e-T7KzowPTAAAAAAEOAAA=";
        let d = decode(id).unwrap();
        assert_eq!(d.mailbox_guid, b"ef013138-6fae-47d4-a06b-558f996abf88");
        assert_eq!(d.folder.1, CONTACTS_GLOBCNT);
        // `…AAAYbuK-AAA=`: the `-` is base64's 63 (`/`), not RFC 4648's URL-safe 62.
        assert_eq!(d.item, Some(0x186e_e2bf));
        let f = decode(folder).unwrap();
        assert_eq!((f.folder, f.item), (d.folder, None));
        // The changeKey carries the same replica GUID (in plain base64).
        let ck = STANDARD
            .decode("EQAAABYAAAAiIsqMbYjsT5e/T7KzowPTAAAYc8Bf")
            .unwrap();
        assert_eq!(ck[..8], CONTACT_CHANGE_KEY);
        assert_eq!(ck[8..24], d.folder.0);
    }

    #[test]
    fn ids_of_one_folder_share_all_but_a_few_characters_and_look_real() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut m = MailboxIds::for_user("11111111-1111-4111-8111-111111111111");
        let folder = m.default_folder_id();
        assert_eq!(folder.len(), 120);
        assert!(folder.ends_with("AAAAAAEOAAA="), "{folder}");
        assert!(m.root_folder_id().ends_with("AAAAAAEIAAA="));
        let ids: Vec<String> = (0..1000)
            .map(|_| m.new_item_id(&folder, &mut rng))
            .collect();
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        for id in &ids {
            assert_eq!(id.len(), 152);
            assert!(id.starts_with("AAMkA") && id.ends_with("AAA="), "{id}");
            assert!(
                id.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_=".contains(&c))
            );
            assert!(common_prefix(id, &ids[0]) >= 140, "{id} vs {}", ids[0]);
        }
        let ck = m.new_change_key(&mut rng);
        assert_eq!(ck.len(), 40);
        // The 11th character depends on the replica GUID's first byte (`EQAAABYAAACv7At…` and
        // `EQAAABYAAADDii8z…` are real too).
        assert!(ck.starts_with("EQAAABYAAA"), "{ck}");
    }

    #[test]
    fn change_numbers_grow_and_loaded_values_are_never_handed_out_again() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut a = MailboxIds::for_user("u");
        let folder = a.default_folder_id();
        let id = a.new_item_id(&folder, &mut rng);
        let ck1 = a.new_change_key(&mut rng);
        let ck2 = a.new_change_key(&mut rng);
        let cn = |ck: &str| globcnt_of(&STANDARD.decode(ck).unwrap()[24..30]);
        assert!(cn(&ck2) > cn(&ck1));
        // A replay starts a fresh counter: observing the exported values moves it past them.
        let mut b = MailboxIds::for_user("u");
        b.observe_id(&id);
        b.observe_change_key(&ck2);
        let next = b.new_change_key(&mut rng);
        assert!(cn(&next) > cn(&ck2));
        assert_ne!(b.new_item_id(&folder, &mut rng), id);
        // Another mailbox's ids and foreign strings do not move the counter.
        let mut c = MailboxIds::for_user("v");
        let before = c.next;
        c.observe_id(&id);
        c.observe_id("not-an-id");
        c.observe_change_key(&ck2);
        assert_eq!(c.next, before);
    }

    #[test]
    fn foreign_folder_ids_still_give_a_shared_prefix() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut m = MailboxIds::for_user("u");
        let a = m.new_item_id("my-folder", &mut rng);
        let b = m.new_item_id("my-folder", &mut rng);
        assert_eq!(a.len(), 152);
        assert!(common_prefix(&a, &b) >= 140);
    }
}
