//! The two yardsticks every benchmark number is printed against, as pure functions of the data:
//! the **bound** — the fewest requests the data needs and the shortest wall time Graph's limits
//! allow (docs/graph-facts.md §5, §6) — and the **old script's cost** on the same data, computed
//! from its algorithm (docs/sync-rules.md §3). Neither looks at what synccontacts did: a model that
//! read our own numbers would make every ratio 1.
//!
//! It must never do I/O or read a clock; `shape.rs` turns a scenario into the [`DataShape`] these
//! functions take.

/// What the data at the start of one run looks like, counted the way the bound needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataShape {
    /// Licensed users in scope (the hub excluded).
    pub users: u64,
    /// Whether "All Contacts" exists in the hub at the start (if not, one create is needed).
    pub hub_folder_exists: bool,
    /// Contact folders in the hub's folder tree at the start (the old script walks them per user).
    pub hub_tree_folders: u64,
    /// Contacts in the hub folder at the start.
    pub hub_contacts: u64,
    /// Contacts in each user's default folder at the start.
    pub user_contacts: Vec<u64>,
    /// Contact copies in the hub that must be created or changed for every copy to converge.
    pub hub_writes: u64,
    /// The same per user mailbox (same order as `user_contacts`).
    pub user_writes: Vec<u64>,
    /// Size of the hub folder just before the old script's step 1 reaches user k (it grows as
    /// earlier users' contacts are created there), plus a last entry: its size after step 1.
    pub hub_before_user_step1: Vec<u64>,
}

impl DataShape {
    pub fn total_writes(&self) -> u64 {
        self.hub_writes + self.user_writes.iter().sum::<u64>()
    }
}

/// Graph's limits and the page sizes, as the bound and the old-script model use them.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Service time of one Graph request (the emulator's `--latency-ms`), in seconds.
    pub latency_s: f64,
    /// Requests in flight per (app, mailbox): Outlook allows 4 (docs/graph-facts.md §6).
    pub per_mailbox: u64,
    /// Requests per app per window, across everything: 130,000 per 10 s (docs/graph-facts.md §6).
    pub app_requests: u64,
    pub app_window_s: f64,
    /// `$top` maximum for contacts (1,000) and for users (999) (docs/graph-facts.md §3).
    pub contacts_page: u64,
    pub users_page: u64,
    /// Rows per page of a contact delta round: Graph caps them at about 200 whatever
    /// `Prefer: odata.maxpagesize` asks (docs/graph-facts.md §3), the emulator at exactly 200.
    pub delta_page: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            latency_s: 0.020,
            per_mailbox: 4,
            app_requests: 130_000,
            app_window_s: 10.0,
            contacts_page: 1000,
            users_page: 999,
            delta_page: 200,
        }
    }
}

/// The floor for one run: requests as Graph counts them (a `$batch` item counts as one request,
/// docs/graph-facts.md §5–§6) and seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    /// Everything, token request included.
    pub requests: u64,
    /// Requests to the hub mailbox (folder lookup/create, reads, writes).
    pub hub_requests: u64,
    /// Of those, the reads (folder lookup and folder pages): what the emulator counts as the
    /// hub's `GET`s.
    pub hub_reads: u64,
    pub reads: u64,
    pub writes: u64,
    /// Reads and writes addressed to mailboxes (what the emulator's `byMailbox` counts): the
    /// folder lookup, the folder pages, the contact writes and the hub folder's create.
    pub mailbox_reads: u64,
    pub mailbox_writes: u64,
    pub wall_s: f64,
    /// The wall time if hub writes must finish before user writes start (synccontacts' order, for
    /// crash safety; not a Graph limit). Reported beside the physical bound.
    pub wall_hub_first_s: f64,
}

/// Pages needed to read `n` items at `page` per page: an empty folder still costs one request.
pub fn pages(n: u64, page: u64) -> u64 {
    n.div_ceil(page.max(1)).max(1)
}

/// Shortest time in which `n` requests fit under a fixed-window budget of `per_window` per
/// `window_s` (the emulator's and, as far as documented, Graph's app limit), when the last one
/// still takes `latency_s`: a burst fills the first window at once, the rest wait for new windows.
pub fn rate_floor_s(n: u64, per_window: u64, window_s: f64, latency_s: f64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let windows = n.div_ceil(per_window.max(1));
    (windows - 1) as f64 * window_s + latency_s
}

/// Time to push `n` requests through one mailbox that serves `per_mailbox` at once.
fn mailbox_floor_s(n: u64, l: &Limits) -> f64 {
    n.div_ceil(l.per_mailbox.max(1)) as f64 * l.latency_s
}

/// The bound for one run of synccontacts on `d`.
///
/// Requests: one token; the licensed-user list in pages of 999; the hub's directory entry; one
/// folder lookup in the hub (plus its create when missing); one pass of pages of 1,000 over the
/// hub folder and over every user's default folder; one write per contact copy that must change.
///
/// Wall: the critical path of (user list → slowest user folder read) and (hub lookup → hub folder
/// read), then the writes, which cannot start before every folder is read (the plan needs all
/// of them) and then take at least the slowest mailbox's writes at 4 in flight. The whole run
/// also cannot beat the app's request budget. The token request is not delayed by the emulator
/// and costs no latency here.
pub fn bound(d: &DataShape, l: &Limits) -> Bound {
    let user_list_pages = pages(d.users, l.users_page);
    let hub_folder = 1 + u64::from(!d.hub_folder_exists);
    let hub_pages = pages(d.hub_contacts, l.contacts_page);
    let user_pages: Vec<u64> = d
        .user_contacts
        .iter()
        .map(|&n| pages(n, l.contacts_page))
        .collect();
    let reads = user_list_pages + 1 + hub_folder + hub_pages + user_pages.iter().sum::<u64>();
    let writes = d.total_writes();
    let requests = 1 + reads + writes;

    let lat = l.latency_s;
    let users_path = (user_list_pages + user_pages.iter().copied().max().unwrap_or(0)) as f64 * lat;
    let hub_path = (hub_folder + hub_pages) as f64 * lat;
    let read_s = users_path.max(hub_path);
    let slowest_user = d.user_writes.iter().copied().max().unwrap_or(0);
    let write_s = mailbox_floor_s(d.hub_writes.max(slowest_user), l);
    let hub_first_s = mailbox_floor_s(d.hub_writes, l) + mailbox_floor_s(slowest_user, l);
    let rate_s = rate_floor_s(requests - 1, l.app_requests, l.app_window_s, lat);
    Bound {
        requests,
        hub_requests: hub_folder + hub_pages + d.hub_writes,
        hub_reads: 1 + hub_pages,
        reads,
        writes,
        mailbox_reads: 1 + hub_pages + user_pages.iter().sum::<u64>(),
        mailbox_writes: writes + u64::from(!d.hub_folder_exists),
        wall_s: (read_s + write_s).max(rate_s),
        wall_hub_first_s: (read_s + hub_first_s).max(rate_s),
    }
}

/// How a run with a state (docs/state-and-deletes.md §5) reads one folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FolderRead {
    /// A delta round from the folder's stored link, reporting this many rows (contacts new,
    /// changed or removed since that link's round).
    Delta { changed: u64 },
    /// The stored link is expired or rejected: one request answered 410, then an initial delta
    /// round over the whole folder, which also gives the next run its link. (A `$top=1000` list
    /// would take fewer pages for a large folder but leave no link, so the next run would pay
    /// again; the bound takes the round.)
    Fallback,
}

/// Requests one folder read costs, given the folder's size.
fn folder_read_requests(read: FolderRead, size: u64, l: &Limits) -> u64 {
    match read {
        FolderRead::Delta { changed } => pages(changed, l.delta_page),
        FolderRead::Fallback => 1 + pages(size, l.delta_page),
    }
}

/// The bound for a run that starts from a state (issue 14 (f)–(h)): every folder is read through
/// its stored delta link, `hub` for the hub folder and `users` for the user folders (same order
/// as `d.user_contacts`).
///
/// Requests: one token; the licensed-user list in pages of 999 (the directory has no delta we
/// keep); the hub's directory entry; per folder one delta request, plus one page per 200 rows
/// beyond the first page (a [`FolderRead::Fallback`] folder: the 410 and an initial round over
/// all its contacts); one write per contact copy that must change. No hub folder lookup: its
/// id is in the stored link (if the folder is missing, its lookup and create count as in
/// [`bound`], and the empty new folder is read with one request).
///
/// `changed` counts only what others changed since the stored link. A client whose links
/// predate its own writes of the previous run sees those writes again in its next round; that
/// echo is the client's cost, not the data's, and the bound leaves it out.
///
/// Wall: as in [`bound`], the read critical path (user list → slowest user folder round, beside
/// the hub folder's round; the hub is addressed by name, so its directory entry is off the path),
/// then the slowest mailbox's writes at 4 in flight, never less than the app budget allows.
pub fn delta_bound(d: &DataShape, hub: FolderRead, users: &[FolderRead], l: &Limits) -> Bound {
    let user_list_pages = pages(d.users, l.users_page);
    let hub_folder = if d.hub_folder_exists { 0 } else { 2 };
    let hub_pages = if d.hub_folder_exists {
        folder_read_requests(hub, d.hub_contacts, l)
    } else {
        1
    };
    let user_pages: Vec<u64> = d
        .user_contacts
        .iter()
        .enumerate()
        .map(|(k, &n)| {
            let read = users
                .get(k)
                .copied()
                .unwrap_or(FolderRead::Delta { changed: 0 });
            folder_read_requests(read, n, l)
        })
        .collect();
    let reads = user_list_pages + 1 + hub_folder + hub_pages + user_pages.iter().sum::<u64>();
    let writes = d.total_writes();
    let requests = 1 + reads + writes;

    let lat = l.latency_s;
    let users_path = (user_list_pages + user_pages.iter().copied().max().unwrap_or(0)) as f64 * lat;
    let hub_path = (hub_folder + hub_pages) as f64 * lat;
    let read_s = users_path.max(hub_path);
    let slowest_user = d.user_writes.iter().copied().max().unwrap_or(0);
    let write_s = mailbox_floor_s(d.hub_writes.max(slowest_user), l);
    let hub_first_s = mailbox_floor_s(d.hub_writes, l) + mailbox_floor_s(slowest_user, l);
    let rate_s = rate_floor_s(requests - 1, l.app_requests, l.app_window_s, lat);
    Bound {
        requests,
        hub_requests: hub_folder + hub_pages + d.hub_writes,
        hub_reads: u64::from(!d.hub_folder_exists) + hub_pages,
        reads,
        writes,
        mailbox_reads: u64::from(!d.hub_folder_exists) + hub_pages + user_pages.iter().sum::<u64>(),
        mailbox_writes: writes + u64::from(!d.hub_folder_exists),
        wall_s: (read_s + write_s).max(rate_s),
        wall_hub_first_s: (read_s + hub_first_s).max(rate_s),
    }
}

/// The old script's cost on the same data.
#[derive(Clone, Debug, PartialEq)]
pub struct OldScript {
    pub requests: u64,
    pub hub_requests: u64,
    /// Sequential: every Graph request waits for the previous one.
    pub wall_s: f64,
    /// Whether its hub traffic alone exceeds Outlook's per-mailbox budget within its run (10,000
    /// per 10 minutes): Graph answers 429 and the script, having no retry, aborts the tenant.
    pub hub_throttled: bool,
}

/// Outlook's per (app, mailbox) budget (docs/graph-facts.md §6).
pub const MAILBOX_BUDGET: u64 = 10_000;
pub const MAILBOX_WINDOW_S: f64 = 600.0;

/// The old script's algorithm (docs/sync-rules.md §3, docs/compatibility.md), counted on `d`:
/// one token; users in Graph's default pages of 100; the hub's directory entry; then, per user,
/// **step 1**: read the user's folder, walk the hub's folder tree (one list of the top level plus
/// one `childFolders` list per folder), read the whole hub folder (which grows as earlier users'
/// contacts are created in it), write; then per user, **step 2**: walk the tree again, read the
/// whole hub folder, read the user's folder, write. Pages of 100 (its `$top`), one request per
/// write, nothing in parallel.
///
/// Writes are counted as the data's required writes, which is what the script does at best (its
/// order effects — a stamp followed by an update of the same copy, last-user-wins rewrites — only
/// add more), so this model flatters the script.
pub fn old_script(d: &DataShape, l: &Limits) -> OldScript {
    const PAGE: u64 = 100;
    let users = d.user_contacts.len() as u64;
    let mut hub = 0u64;
    let mut total = 1 + pages(d.users, PAGE) + 1; // token, users, hub directory entry
    let mut folders = d.hub_tree_folders;
    let mut hub_folder_exists = d.hub_folder_exists;
    for k in 0..d.user_contacts.len() {
        let user_read = pages(d.user_contacts[k], PAGE);
        let mut walk = 1 + folders;
        if !hub_folder_exists {
            // The first user finds no folder and creates it; from then on it is in the tree.
            walk += 1;
            hub_folder_exists = true;
            folders += 1;
        }
        let hub_size = d
            .hub_before_user_step1
            .get(k)
            .copied()
            .unwrap_or(d.hub_contacts);
        let hub_read = pages(hub_size, PAGE);
        hub += walk + hub_read;
        total += user_read + walk + hub_read;
    }
    let final_hub = hub_after_step1(d);
    let walk = 1 + folders;
    let step2_hub = users * (walk + pages(final_hub, PAGE));
    let step2_user: u64 = d.user_contacts.iter().map(|&n| pages(n, PAGE)).sum();
    hub += step2_hub + d.hub_writes;
    total += step2_hub + step2_user + d.total_writes();
    // The script's hub traffic squeezed into its own runtime: over budget if the share of it that
    // falls into any 10-minute window exceeds 10,000 (it is spread evenly enough to use the mean).
    let wall_s = (total - 1) as f64 * l.latency_s;
    let windows = (wall_s / MAILBOX_WINDOW_S).max(1.0);
    OldScript {
        requests: total,
        hub_requests: hub,
        wall_s,
        hub_throttled: hub as f64 / windows > MAILBOX_BUDGET as f64,
    }
}

/// Hub size after the old script's step 1: the last user's starting size plus what that user adds.
/// `shape.rs` records it as one more entry of `hub_before_user_step1` (index = users).
fn hub_after_step1(d: &DataShape) -> u64 {
    d.hub_before_user_step1
        .get(d.user_contacts.len())
        .copied()
        .unwrap_or(d.hub_contacts)
}
