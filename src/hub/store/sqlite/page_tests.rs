//! Keyset paging of workstations: pages walked with a small limit put together the whole list,
//! in list order, each row once, across clients whose names differ only in case.

use chrono::Utc;

use super::*;

fn store_with_fleet() -> (tempfile::TempDir, SqliteStore, TeamId) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open_dir(dir.path()).expect("open");
    let user = store
        .create_user(NewUser {
            name: "ann".into(),
            email: "ann@example.com".into(),
            role: Role::Admin,
            team: "Desk".into(),
            password_hash: "x".into(),
        })
        .expect("user");
    let now = Utc::now();
    // Three clients, two of them the same name in another case; hosts in mixed case.
    for (n, (cid, name)) in [("cl_b", "acme"), ("cl_a", "Acme"), ("cl_c", "Bakery")]
        .into_iter()
        .enumerate()
    {
        store
            .create_client(&cid.to_owned(), &user.team_id, name, now)
            .expect("client");
        let link = format!("ln_{cid}");
        store
            .create_link(NewLink {
                id: link.clone(),
                client_id: cid.into(),
                token_hash: format!("{n:064}"),
                created_by: user.id.clone(),
                created_at: now,
                expires_at: now,
            })
            .expect("link");
        for i in 0..7 {
            let host = if i % 2 == 0 { "PC" } else { "pc" };
            store
                .enrol_workstation(NewWorkstation {
                    id: format!("ws_{cid}_{i}"),
                    client_id: cid.into(),
                    link_id: link.clone(),
                    key_hash: format!("{cid}{i}"),
                    report: WorkstationReport {
                        hostname: format!("{host}-{}", i / 2),
                        os: if i == 3 {
                            "Windows 11".into()
                        } else {
                            "Debian".into()
                        },
                        user: "u".into(),
                        screen: None,
                        agent_version: "t".into(),
                    },
                    at: now,
                    requires: SecretRequirements::default(),
                })
                .expect("workstation");
        }
    }
    (dir, store, user.team_id)
}

fn walk(
    store: &SqliteStore,
    team: &TeamId,
    client: Option<&ClientId>,
    filter: Option<&WorkstationFilter>,
    limit: u32,
) -> Vec<WorkstationKey> {
    let mut all: Vec<WorkstationKey> = Vec::new();
    loop {
        let page = store
            .workstations_page(team, client, filter, all.last(), limit)
            .expect("page");
        let short = page.len() < limit as usize;
        all.extend(page.iter().map(|r| workstation_key(&r.info)));
        if short {
            return all;
        }
    }
}

fn list_order(keys: &[WorkstationKey]) -> Vec<(String, String, String, String)> {
    keys.iter()
        .map(|(n, c, h, w)| (n.to_lowercase(), c.clone(), h.to_lowercase(), w.clone()))
        .collect()
}

#[test]
fn pages_of_any_size_put_together_the_whole_list_in_order() {
    let (_dir, store, team) = store_with_fleet();
    let whole = walk(&store, &team, None, None, 1000);
    assert_eq!(whole.len(), 21);
    let mut sorted = list_order(&whole);
    sorted.sort();
    assert_eq!(
        list_order(&whole),
        sorted,
        "list order: client, then host, in any case"
    );
    for limit in [1, 2, 3, 6, 7, 8, 20] {
        assert_eq!(
            walk(&store, &team, None, None, limit),
            whole,
            "pages of {limit}"
        );
    }
    assert_eq!(store.count_workstations(&team, None).expect("count"), 21);
}

#[test]
fn one_clients_pages_and_filtered_pages_hold_only_their_rows() {
    let (_dir, store, team) = store_with_fleet();
    let acme = "cl_a".to_owned();
    let theirs = walk(&store, &team, Some(&acme), None, 2);
    assert_eq!(theirs.len(), 7);
    assert!(theirs.iter().all(|k| k.1 == acme));
    assert_eq!(
        store.count_workstations(&team, Some(&acme)).expect("count"),
        7
    );

    let windows = WorkstationFilter::new("  WINDOWS ").expect("a filter");
    let found = walk(&store, &team, None, Some(&windows), 1);
    assert_eq!(found.len(), 3, "one Windows machine per client: {found:?}");
    assert!(
        WorkstationFilter::new("   ").is_none(),
        "blank text is no filter"
    );
}
