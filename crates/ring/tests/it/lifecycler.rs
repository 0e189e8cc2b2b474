use crate::{cfg, entry, kv, put, ManualClock, PREFIX, T0};
use prometheus_client::registry::Registry;
use std::time::Duration;
use strata_ring::{
    forget, InstanceState, Lifecycler, LifecyclerOptions, RingConfig, RingError, RingMetrics,
};

fn opts(clock: &ManualClock) -> LifecyclerOptions {
    LifecyclerOptions {
        clock: clock.clock(),
        ..Default::default()
    }
}

#[tokio::test]
async fn register_join_heartbeat_leave_unregister() {
    let (_m, kv) = kv();
    let clock = ManualClock::new(T0);
    let l = Lifecycler::start_with(cfg("ing-1"), kv.clone(), PREFIX, opts(&clock))
        .await
        .unwrap();
    let e = entry(&*kv, "ing-1").await.unwrap();
    assert_eq!(e.state, InstanceState::Pending);
    assert!(e.tokens.is_empty());
    assert_eq!((e.heartbeat_ms, e.registered_ms), (T0, T0));
    assert_eq!(e.addr, "ing-1.local:9095");
    assert_eq!(e.http_addr, "ing-1.local:8080");

    l.join().await.unwrap();
    assert!(l.is_active());
    let e = entry(&*kv, "ing-1").await.unwrap();
    assert_eq!(e.state, InstanceState::Active);
    assert_eq!(e.tokens.len(), 128);
    assert_eq!(e.tokens, l.tokens());

    clock.advance(5_000);
    l.heartbeat().await.unwrap();
    let e = entry(&*kv, "ing-1").await.unwrap();
    assert_eq!(e.heartbeat_ms, T0 + 5_000);
    assert_eq!(e.registered_ms, T0, "registration time never moves forward");

    let err = l.set_state(InstanceState::Pending).await.unwrap_err();
    assert!(matches!(err, RingError::InvalidTransition { .. }), "{err}");

    l.leave().await.unwrap();
    assert_eq!(
        entry(&*kv, "ing-1").await.unwrap().state,
        InstanceState::Leaving
    );
    l.stop().await.unwrap();
    assert!(
        entry(&*kv, "ing-1").await.is_none(),
        "unregistered on shutdown"
    );
    assert!(matches!(l.join().await, Err(RingError::Stopped)));
}

#[tokio::test]
async fn restart_with_tokens_file_keeps_tokens_and_goes_active() {
    let dir = tempfile::tempdir().unwrap();
    let c = RingConfig {
        tokens_file: dir.path().join("tokens").to_string_lossy().into_owned(),
        ..cfg("ing-1")
    };
    let (_m, kv) = kv();
    let l = Lifecycler::start(c.clone(), kv.clone(), PREFIX)
        .await
        .unwrap();
    l.join().await.unwrap();
    let tokens = l.tokens();
    l.stop().await.unwrap();
    assert!(entry(&*kv, "ing-1").await.is_none());

    let l = Lifecycler::start(c, kv.clone(), PREFIX).await.unwrap();
    assert_eq!(l.state(), InstanceState::Active);
    assert_eq!(l.tokens(), tokens);
    let e = entry(&*kv, "ing-1").await.unwrap();
    assert_eq!((e.state, e.tokens), (InstanceState::Active, tokens));
    l.stop().await.unwrap();
}

#[tokio::test]
async fn restart_into_a_leaving_entry_goes_active_with_the_configured_token_count() {
    let (_m, kv) = kv();
    let c = RingConfig {
        unregister_on_shutdown: false,
        ..cfg("ing-1")
    };
    let l = Lifecycler::start(c.clone(), kv.clone(), PREFIX)
        .await
        .unwrap();
    l.join().await.unwrap();
    let old = l.tokens();
    l.stop().await.unwrap();
    let e = entry(&*kv, "ing-1").await.unwrap();
    assert_eq!(
        e.state,
        InstanceState::Leaving,
        "kept in the ring on shutdown"
    );
    assert_eq!(e.tokens, old);

    let l = Lifecycler::start(
        RingConfig {
            num_tokens: 64,
            instance_addr: Some("10.0.0.9:9095".into()),
            ..c
        },
        kv.clone(),
        PREFIX,
    )
    .await
    .unwrap();
    assert!(l.is_active());
    let e = entry(&*kv, "ing-1").await.unwrap();
    assert_eq!(e.state, InstanceState::Active);
    assert_eq!(e.tokens.len(), 64);
    assert!(
        e.tokens.iter().all(|t| old.contains(t)),
        "a subset of its old tokens"
    );
    assert_eq!(
        e.addr, "10.0.0.9:9095",
        "takes the entry over with its new address"
    );
}

#[tokio::test]
async fn restart_into_a_joining_entry_goes_back_to_pending() {
    let (_m, kv) = kv();
    put(&*kv, "ing-1", InstanceState::Joining, vec![1, 2, 3], T0).await;
    let l = Lifecycler::start(cfg("ing-1"), kv.clone(), PREFIX)
        .await
        .unwrap();
    assert_eq!(l.state(), InstanceState::Pending);
    assert_eq!(l.tokens(), vec![1, 2, 3]);
    l.join().await.unwrap();
    let e = entry(&*kv, "ing-1").await.unwrap();
    assert_eq!(e.tokens.len(), 128);
    assert!(
        [1, 2, 3].iter().all(|t| e.tokens.contains(t)),
        "keeps its tokens"
    );
}

#[tokio::test]
async fn a_forgotten_instance_registers_again_at_its_next_heartbeat() {
    let (_m, kv) = kv();
    let l = Lifecycler::start(cfg("ing-1"), kv.clone(), PREFIX)
        .await
        .unwrap();
    l.join().await.unwrap();
    assert!(forget(&*kv, PREFIX, "ing-1").await.unwrap());
    assert!(!forget(&*kv, PREFIX, "ing-1").await.unwrap());
    assert!(entry(&*kv, "ing-1").await.is_none());
    l.heartbeat().await.unwrap();
    let e = entry(&*kv, "ing-1").await.unwrap();
    assert_eq!((e.state, e.tokens), (InstanceState::Active, l.tokens()));
}

#[tokio::test]
async fn join_avoids_tokens_of_other_instances() {
    let (_m, kv) = kv();
    let others: Vec<u32> = (0..100_000).collect();
    put(&*kv, "other", InstanceState::Active, others.clone(), T0).await;
    let l = Lifecycler::start(
        RingConfig {
            num_tokens: 512,
            ..cfg("ing-1")
        },
        kv.clone(),
        PREFIX,
    )
    .await
    .unwrap();
    l.join().await.unwrap();
    assert_eq!(l.tokens().len(), 512);
    assert!(l.tokens().iter().all(|t| *t >= 100_000));
}

#[tokio::test]
async fn colliding_tokens_are_redrawn_by_the_greater_id() {
    let (_m, kv) = kv();
    let b = Lifecycler::start(cfg("b"), kv.clone(), PREFIX)
        .await
        .unwrap();
    b.join().await.unwrap();
    let b_tokens = b.tokens();
    // Two instances that joined at the same time picked some of the same tokens.
    let shared: Vec<u32> = b_tokens[..5].to_vec();
    put(&*kv, "a", InstanceState::Active, shared.clone(), T0).await;
    put(
        &*kv,
        "c",
        InstanceState::Active,
        b_tokens[5..8].to_vec(),
        T0,
    )
    .await;

    b.heartbeat().await.unwrap();
    let now = entry(&*kv, "b").await.unwrap().tokens;
    assert_eq!(now.len(), 128);
    assert!(
        shared.iter().all(|t| !now.contains(t)),
        "b gave up the tokens a holds"
    );
    assert!(
        b_tokens[5..8].iter().all(|t| now.contains(t)),
        "b keeps the tokens it shares with c (c draws new ones)"
    );
    assert_eq!(b.tokens(), now);
}

#[tokio::test]
async fn auto_forget_removes_dead_entries() {
    let (_m, kv) = kv();
    let clock = ManualClock::new(T0);
    let mut reg = Registry::default();
    let metrics = RingMetrics::new(&mut reg);
    let c = cfg("me");
    let forget_after = c.heartbeat_timeout.as_millis() as i64 * 10;
    put(&*kv, "alive-1", InstanceState::Active, vec![1], T0).await;
    put(&*kv, "alive-2", InstanceState::Active, vec![2], T0).await;
    put(
        &*kv,
        "dead",
        InstanceState::Active,
        vec![3],
        T0 - forget_after - 1,
    )
    .await;
    put(
        &*kv,
        "stale",
        InstanceState::Active,
        vec![4],
        T0 - forget_after + 1,
    )
    .await;
    let l = Lifecycler::start_with(
        c,
        kv.clone(),
        PREFIX,
        LifecyclerOptions {
            metrics: Some(metrics),
            ..opts(&clock)
        },
    )
    .await
    .unwrap();
    l.heartbeat().await.unwrap();
    assert!(entry(&*kv, "dead").await.is_none(), "forgotten");
    assert!(
        entry(&*kv, "stale").await.is_some(),
        "not yet past the forget period"
    );
    assert!(entry(&*kv, "alive-1").await.is_some());
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
    assert!(
        text.contains(r#"strata_ring_auto_forgotten_total{name="ingester"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn auto_forget_stands_down_when_half_the_ring_looks_unhealthy() {
    let (_m, kv) = kv();
    let clock = ManualClock::new(T0);
    let c = cfg("me");
    let timeout = c.heartbeat_timeout.as_millis() as i64;
    put(
        &*kv,
        "dead",
        InstanceState::Active,
        vec![3],
        T0 - 20 * timeout,
    )
    .await;
    put(
        &*kv,
        "unhealthy",
        InstanceState::Active,
        vec![4],
        T0 - 2 * timeout,
    )
    .await;
    let l = Lifecycler::start_with(c, kv.clone(), PREFIX, opts(&clock))
        .await
        .unwrap();
    // Two of three members unhealthy: this instance may be the one cut off.
    l.heartbeat().await.unwrap();
    assert!(entry(&*kv, "dead").await.is_some());
    // Exactly half (the dead one and this instance) is still too many.
    forget(&*kv, PREFIX, "unhealthy").await.unwrap();
    l.heartbeat().await.unwrap();
    assert!(entry(&*kv, "dead").await.is_some());
    // With a healthy majority the dead entry goes.
    put(&*kv, "alive", InstanceState::Active, vec![5], T0).await;
    l.heartbeat().await.unwrap();
    assert!(entry(&*kv, "dead").await.is_none());
}

#[tokio::test]
async fn auto_forget_zero_disables_it() {
    let (_m, kv) = kv();
    let clock = ManualClock::new(T0);
    put(&*kv, "a", InstanceState::Active, vec![1], T0).await;
    put(&*kv, "b", InstanceState::Active, vec![2], T0).await;
    put(&*kv, "dead", InstanceState::Active, vec![3], 0).await;
    let l = Lifecycler::start_with(
        RingConfig {
            auto_forget_unhealthy_periods: 0,
            ..cfg("me")
        },
        kv.clone(),
        PREFIX,
        opts(&clock),
    )
    .await
    .unwrap();
    l.heartbeat().await.unwrap();
    assert!(entry(&*kv, "dead").await.is_some());
}

#[tokio::test]
async fn the_heartbeat_task_refreshes_the_entry_until_stopped() {
    let (_m, kv) = kv();
    let clock = ManualClock::new(T0);
    let l = Lifecycler::start_with(
        RingConfig {
            heartbeat_period: Duration::from_millis(20),
            heartbeat_timeout: Duration::from_secs(60),
            ..cfg("ing-1")
        },
        kv.clone(),
        PREFIX,
        opts(&clock),
    )
    .await
    .unwrap();
    clock.set(T0 + 1_000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while entry(&*kv, "ing-1").await.unwrap().heartbeat_ms != T0 + 1_000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no heartbeat written"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    l.stop().await.unwrap();
    assert!(entry(&*kv, "ing-1").await.is_none());
}

#[tokio::test]
async fn start_needs_an_address_and_a_valid_config() {
    let (_m, kv) = kv();
    let e = Lifecycler::start(
        RingConfig {
            instance_addr: None,
            ..cfg("x")
        },
        kv.clone(),
        PREFIX,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("instance_addr"), "{e}");
    let e = Lifecycler::start(
        RingConfig {
            num_tokens: 0,
            ..cfg("x")
        },
        kv,
        PREFIX,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("num_tokens"), "{e}");
}

#[tokio::test]
async fn no_heartbeat_after_stop() {
    let (_m, kv) = kv();
    let l = Lifecycler::start(cfg("ing-1"), kv.clone(), PREFIX)
        .await
        .unwrap();
    l.stop().await.unwrap();
    assert!(matches!(l.heartbeat().await, Err(RingError::Stopped)));
    assert!(entry(&*kv, "ing-1").await.is_none(), "not registered again");
}
