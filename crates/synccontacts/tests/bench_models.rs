//! Runs the unit tests of the benchmark's pure models (`benches/sync/model.rs`, `shape.rs`): a
//! `harness = false` bench target cannot run its own `#[test]`s, so they are compiled here too.

#[path = "../benches/sync/model.rs"]
mod model;
#[path = "../benches/sync/shape.rs"]
mod shape;

mod model_tests {
    use super::model::*;

    fn limits() -> Limits {
        Limits::default()
    }

    /// 2 users with 3 and 1500 contacts, empty hub without folder, 10 hub creates.
    fn cold() -> DataShape {
        DataShape {
            users: 2,
            hub_folder_exists: false,
            hub_tree_folders: 0,
            hub_contacts: 0,
            user_contacts: vec![3, 1500],
            hub_writes: 10,
            user_writes: vec![10, 12],
            hub_before_user_step1: vec![0, 3, 10],
        }
    }

    #[test]
    fn pages_count_an_empty_folder_as_one_request() {
        assert_eq!(pages(0, 1000), 1);
        assert_eq!(pages(1, 1000), 1);
        assert_eq!(pages(1000, 1000), 1);
        assert_eq!(pages(1001, 1000), 2);
    }

    #[test]
    fn bound_counts_token_lookups_reads_and_writes() {
        let b = bound(&cold(), &limits());
        // reads: users 1 + hub entry 1 + folder lookup+create 2 + hub page 1 + user pages 1+2
        assert_eq!(b.reads, 8);
        assert_eq!(b.writes, 32);
        assert_eq!(b.requests, 1 + 8 + 32);
        assert_eq!(b.hub_requests, 2 + 1 + 10);
        // lookup + hub page + user pages; the folder create is a write
        assert_eq!((b.mailbox_reads, b.mailbox_writes), (1 + 1 + 3, 33));
    }

    #[test]
    fn bound_wall_is_read_path_then_slowest_mailbox_at_four_in_flight() {
        let b = bound(&cold(), &limits());
        // read: users path = (1 list page + 2 pages) * 20ms = 60ms > hub path (2+1)*20 = 60ms
        // writes: slowest mailbox 12 → 3 rounds of 4 → 60 ms
        assert!((b.wall_s - 0.120).abs() < 1e-9, "{}", b.wall_s);
        // hub first: 10 → 3 rounds, then 12 → 3 rounds
        assert!(
            (b.wall_hub_first_s - 0.180).abs() < 1e-9,
            "{}",
            b.wall_hub_first_s
        );
    }

    #[test]
    fn second_run_bound_has_no_writes_and_one_pass_per_folder() {
        let d = DataShape {
            users: 3,
            hub_folder_exists: true,
            hub_tree_folders: 1,
            hub_contacts: 2500,
            user_contacts: vec![2500, 2500, 2500],
            hub_writes: 0,
            user_writes: vec![0, 0, 0],
            hub_before_user_step1: vec![2500, 2500, 2500, 2500],
        };
        let b = bound(&d, &limits());
        assert_eq!(b.writes, 0);
        assert_eq!(b.reads, 1 + 1 + 1 + 3 + 9);
        assert_eq!(b.hub_requests, 1 + 3);
        // users list 1 + 3 pages = 4 × 20 ms; hub lookup 1 + 3 pages = 4 × 20 ms
        assert!((b.wall_s - 0.080).abs() < 1e-9);
    }

    #[test]
    fn app_budget_dominates_a_write_heavy_tenant() {
        // 1,000 mailboxes × 300 writes: each mailbox needs only 75 rounds (1.5 s), but 300,000
        // requests need three windows of 130,000: at least 20 s.
        let d = DataShape {
            users: 1000,
            hub_folder_exists: false,
            hub_tree_folders: 0,
            hub_contacts: 0,
            user_contacts: vec![10; 1000],
            hub_writes: 300,
            user_writes: vec![300; 1000],
            hub_before_user_step1: vec![300; 1001],
        };
        let b = bound(&d, &limits());
        assert_eq!(b.writes, 300_300);
        assert!(b.wall_s > 20.0 && b.wall_s < 20.1, "{}", b.wall_s);
        assert!((rate_floor_s(130_000, 130_000, 10.0, 0.02) - 0.02).abs() < 1e-12);
        assert!((rate_floor_s(130_001, 130_000, 10.0, 0.02) - 10.02).abs() < 1e-9);
        assert_eq!(rate_floor_s(0, 130_000, 10.0, 0.02), 0.0);
    }

    #[test]
    fn old_script_rereads_hub_and_tree_per_user_in_both_steps() {
        let d = cold();
        let o = old_script(&d, &limits());
        // token 1, users 1, hub entry 1
        // step 1 user 0: user 1 page, walk 1 + create 1, hub (0) 1 page
        // step 1 user 1: user 15 pages, walk 1 + 1 folder, hub (3) 1 page
        // step 2: per user walk 2 + hub (10) 1 page = 3, ×2 = 6; user pages 1 + 15
        // writes 32
        let expected = 3 + (1 + 2 + 1) + (15 + 2 + 1) + 6 + 16 + 32;
        assert_eq!(o.requests, expected);
        assert_eq!(o.hub_requests, (2 + 1) + (2 + 1) + 6 + 10);
        assert!((o.wall_s - (expected - 1) as f64 * 0.02).abs() < 1e-9);
        assert!(!o.hub_throttled);
    }

    #[test]
    fn old_script_hub_reads_grow_with_users_and_hit_the_mailbox_budget() {
        // 1,000 users, hub of 300: per user and step a 2-request walk and 3 pages of the hub.
        let d = DataShape {
            users: 1000,
            hub_folder_exists: true,
            hub_tree_folders: 1,
            hub_contacts: 300,
            user_contacts: vec![300; 1000],
            hub_writes: 0,
            user_writes: vec![0; 1000],
            hub_before_user_step1: vec![300; 1001],
        };
        let o = old_script(&d, &limits());
        assert_eq!(o.hub_requests, 2 * 1000 * (2 + 3));
        // token, 10 user pages, hub entry; per user and step 3 user pages, walk 2, hub 3
        assert_eq!(o.requests, 12 + 1000 * (3 + 2 + 3) * 2);
        // 16,012 sequential requests × 20 ms = 320 s, inside one 10-minute window: 10,000 hub
        // requests in it is not over the budget, one more would be.
        assert!(!o.hub_throttled);
        let mut bigger = d.clone();
        bigger.hub_contacts = 400;
        bigger.hub_before_user_step1 = vec![400; 1001];
        assert!(old_script(&bigger, &limits()).hub_throttled);
    }

    #[test]
    fn old_script_is_far_costlier_than_the_bound_on_a_shared_pool() {
        let d = DataShape {
            users: 50,
            hub_folder_exists: false,
            hub_tree_folders: 0,
            hub_contacts: 0,
            user_contacts: vec![40; 50],
            hub_writes: 865,
            user_writes: vec![865; 50],
            hub_before_user_step1: (0..=50).map(|k| (k * 17).min(865)).collect(),
        };
        let b = bound(&d, &limits());
        let o = old_script(&d, &limits());
        assert!(o.requests > b.requests);
        assert!(o.wall_s > 10.0 * b.wall_s);
    }
}

mod shape_tests {
    use super::shape::*;
    use graph_emulator::Scenario;
    use serde_json::json;

    const ID_A: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
    const ID_B: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";

    fn contact(
        name: &str,
        email: &str,
        job: &str,
        modified: &str,
        sync_id: Option<&str>,
    ) -> serde_json::Value {
        let notes = sync_id.map(|id| {
            format!("my text\r\nSyncId={id};CreatedBy=a@contoso.com;LastUpdatedAt=2026-01-01T00:00:00Z;LastUpdatedBy=a@contoso.com")
        });
        json!({"displayName": name, "emailAddresses": [{"name": name, "address": email}],
               "jobTitle": job, "lastModifiedDateTime": modified, "personalNotes": notes})
    }

    fn scenario(
        hub: Option<Vec<serde_json::Value>>,
        users: Vec<Vec<serde_json::Value>>,
    ) -> Scenario {
        let mut us = vec![json!({"userPrincipalName": "hub@contoso.com",
            "contactFolders": hub.map(|c| vec![json!({"displayName": "Other", "childFolders": [
                {"displayName": "All Contacts", "contacts": c}]})]).unwrap_or_default()})];
        for (k, cs) in users.into_iter().enumerate() {
            us.push(json!({"userPrincipalName": format!("u{k}@contoso.com"),
                "assignedLicenses": [{"skuId": "05e9a617-0261-4cee-bb44-138d3ef5d965"}],
                "contacts": cs}));
        }
        us.push(
            json!({"userPrincipalName": "unlicensed@contoso.com", "contacts": [
            contact("Zed", "zed@x.com", "", "2026-01-01T00:00:00Z", None)]}),
        );
        let s = json!({"tenants": [{"tenantId": "t", "apps": [{"clientId": "c"}], "users": us}]});
        Scenario::from_json(&s.to_string()).unwrap()
    }

    #[test]
    fn cold_tenant_needs_every_logical_contact_everywhere_and_a_stamp_on_every_copy() {
        let s = scenario(
            None,
            vec![
                vec![
                    contact("Ann", "ann@x.com", "a", "2026-01-01T00:00:00Z", None),
                    contact("Bob", "bob@x.com", "b", "2026-01-01T00:00:00Z", None),
                ],
                vec![contact(
                    "Ann",
                    "ANN@x.com ",
                    "a",
                    "2026-01-01T00:00:00Z",
                    None,
                )],
                vec![],
            ],
        );
        let d = shape_of(&s, "hub@contoso.com");
        assert_eq!(d.users, 3);
        assert!(!d.hub_folder_exists);
        assert_eq!(d.hub_tree_folders, 0);
        assert_eq!(d.user_contacts, vec![2, 1, 0]);
        // hub: 2 creates; u0: 2 stamps; u1: 1 stamp + 1 create; u2: 2 creates
        assert_eq!(d.hub_writes, 2);
        assert_eq!(d.user_writes, vec![2, 2, 2]);
        // the old script's hub grows by u0's two people, then u1 brings nobody new
        assert_eq!(d.hub_before_user_step1, vec![0, 2, 2, 2]);
    }

    #[test]
    fn converged_tenant_needs_nothing() {
        let a = |m| contact("Ann", "ann@x.com", "a", m, Some(ID_A));
        let b = |m| contact("Bob", "bob@x.com", "b", m, Some(ID_B));
        let s = scenario(
            Some(vec![a("2026-02-01T00:00:00Z"), b("2026-02-01T00:00:00Z")]),
            vec![
                vec![a("2026-02-02T00:00:00Z"), b("2026-01-01T00:00:00Z")],
                vec![b("2026-02-03T00:00:00Z"), a("2026-02-01T00:00:00Z")],
            ],
        );
        let d = shape_of(&s, "hub@contoso.com");
        assert!(d.hub_folder_exists);
        assert_eq!(d.hub_tree_folders, 2);
        assert_eq!(d.hub_contacts, 2);
        assert_eq!(d.total_writes(), 0);
        assert_eq!(d.hub_before_user_step1, vec![2, 2, 2]);
    }

    #[test]
    fn a_newer_edit_in_one_copy_needs_every_other_copy_written() {
        let s = scenario(
            Some(vec![
                contact("Ann", "ann@x.com", "a", "2026-02-01T00:00:00Z", Some(ID_A)),
                contact("Bob", "bob@x.com", "b", "2026-02-01T00:00:00Z", Some(ID_B)),
            ]),
            vec![
                vec![contact(
                    "Ann",
                    "ann@x.com",
                    "edited",
                    "2026-03-01T00:00:00Z",
                    Some(ID_A),
                )],
                vec![contact(
                    "Ann",
                    "ann@x.com",
                    "a",
                    "2026-02-01T00:00:00Z",
                    Some(ID_A),
                )],
                // an older different version loses: only it is rewritten, with the winner's data
                vec![contact(
                    "Ann",
                    "ann@x.com",
                    "old",
                    "2026-01-01T00:00:00Z",
                    Some(ID_A),
                )],
            ],
        );
        let d = shape_of(&s, "hub@contoso.com");
        assert_eq!(d.hub_writes, 1);
        // u0 holds the winner; u1 and u2 get it; everybody lacks Bob
        assert_eq!(d.user_writes, vec![1, 2, 2]);
    }

    #[test]
    fn a_copy_carrying_another_sync_id_is_rewritten() {
        let s = scenario(
            Some(vec![contact(
                "Ann",
                "ann@x.com",
                "a",
                "2026-02-01T00:00:00Z",
                Some(ID_A),
            )]),
            vec![vec![contact(
                "Ann",
                "ann@x.com",
                "a",
                "2026-02-01T00:00:00Z",
                Some(ID_B),
            )]],
        );
        let d = shape_of(&s, "hub@contoso.com");
        assert_eq!((d.hub_writes, d.user_writes.clone()), (0, vec![1]));
    }

    #[test]
    fn generated_cold_tenant_matches_its_pool() {
        let s = graph_emulator::generate(&graph_emulator::GenerateOptions {
            users: 4,
            contacts_per_user: 5,
            pool: Some(8),
            edits: 0.0,
            seed: 3,
        });
        let d = shape_of(&s, "hub@contoso.com");
        assert_eq!(d.users, 4);
        assert_eq!(d.user_contacts, vec![5; 4]);
        let people = d.hub_writes;
        assert!((5..=8).contains(&people), "{people}");
        // every user ends with every person: own copies stamped, the others created
        assert_eq!(d.user_writes, vec![people; 4]);
        assert_eq!(*d.hub_before_user_step1.last().unwrap(), people);
    }
}
