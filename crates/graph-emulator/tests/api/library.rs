//! The library's own API: `start` fails with its own error type (issue 11), naming what went
//! wrong, so callers can match on it instead of parsing an `anyhow` message.

use graph_emulator::{EmulatorOptions, Scenario, StartError};

use crate::common::fixture;

#[tokio::test]
async fn start_reports_an_invalid_scenario_as_a_scenario_error() {
    // Built in code, so it skipped `from_json`'s validation: `start` validates again.
    let mut s = fixture();
    let dup = s.tenants[0].users[0].clone();
    s.tenants[0].users.push(dup);
    let err = graph_emulator::start(s, EmulatorOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::Scenario(_)), "{err:?}");
    assert!(err.to_string().contains("userPrincipalName"), "{err}");
}

#[tokio::test]
async fn start_reports_a_taken_port_as_a_listen_error() {
    let first = graph_emulator::start(fixture(), EmulatorOptions::default())
        .await
        .unwrap();
    let err = graph_emulator::start(
        Scenario::default(),
        EmulatorOptions {
            listen: Some(first.addr()),
            ..EmulatorOptions::default()
        },
    )
    .await
    .unwrap_err();
    match &err {
        StartError::Listen { addr, .. } => assert_eq!(*addr, first.addr()),
        other => panic!("expected a listen error, got {other:?}"),
    }
    assert!(err.to_string().contains(&first.addr().to_string()), "{err}");
    // The error is a std error: `?` works into anyhow, Box<dyn Error> and the like.
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
    assert!(boxed.source().is_some());
}
