use super::*;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

#[tokio::test]
async fn concurrent_callers_share_one_run() {
    let sf: Arc<SingleFlight<&'static str, usize>> = Arc::new(SingleFlight::default());
    let runs = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let sf = Arc::clone(&sf);
        let runs = Arc::clone(&runs);
        let mut rx = rx.clone();
        tasks.push(tokio::spawn(async move {
            sf.run("k", None, Some(Instant::now()), move || {
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    // Hold the flight open until every caller has joined.
                    let _ = rx.wait_for(|go| *go).await;
                    7
                }
                .boxed()
            })
            .await
        }));
    }
    while sf.in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    tx.send(true).unwrap();
    let mut leaders = 0;
    for t in tasks {
        let (v, role) = t.await.unwrap();
        assert_eq!(v, Ok(7));
        leaders += usize::from(role == Role::Leader);
    }
    // The test runtime is single-threaded: every caller joined before the flight was let go.
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(leaders, 1);
    assert_eq!(sf.in_flight(), 0);
}

#[tokio::test]
async fn a_finished_run_is_not_reused() {
    let sf: SingleFlight<u8, u32> = SingleFlight::default();
    let (a, _) = sf.run(1, None, None, || async { 1 }.boxed()).await;
    let (b, role) = sf.run(1, None, None, || async { 2 }.boxed()).await;
    assert_eq!((a, b, role), (Ok(1), Ok(2), Role::Leader));
}

/// A caller that needs data fetched after it asked never joins a run that started before.
#[tokio::test]
async fn a_caller_needing_newer_data_starts_its_own_run() {
    let sf: Arc<SingleFlight<u8, &'static str>> = Arc::new(SingleFlight::default());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let first = {
        let sf = Arc::clone(&sf);
        let mut rx = rx.clone();
        tokio::spawn(async move {
            sf.run(1, None, Some(started), move || {
                async move {
                    let _ = rx.wait_for(|go| *go).await;
                    "old"
                }
                .boxed()
            })
            .await
        })
    };
    while sf.in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    // A caller content with data from `started` on joins the run in flight.
    let joined = {
        let sf = Arc::clone(&sf);
        tokio::spawn(async move {
            sf.run(1, Some(started), Some(started), || {
                async { "third" }.boxed()
            })
            .await
        })
    };
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    // One that needs data from after `started` joins nothing older: it runs its own (not held).
    let asked = started + Duration::from_millis(1);
    let (v, role) = sf
        .run(1, Some(asked), Some(asked), || async { "new" }.boxed())
        .await;
    assert_eq!((v, role), (Ok("new"), Role::Leader));
    tx.send(true).unwrap();
    assert_eq!(first.await.unwrap(), (Ok("old"), Role::Leader));
    assert_eq!(joined.await.unwrap(), (Ok("old"), Role::Follower));
    assert_eq!(sf.in_flight(), 0);
}

#[tokio::test]
async fn a_panicking_run_is_an_error_for_every_caller_and_is_forgotten() {
    let sf: Arc<SingleFlight<u8, u8>> = Arc::new(SingleFlight::default());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let sf = Arc::clone(&sf);
        let mut rx = rx.clone();
        tasks.push(tokio::spawn(async move {
            sf.run(1, None, None, move || {
                async move {
                    let _ = rx.wait_for(|go| *go).await;
                    panic!("a provider answer that panics")
                }
                .boxed()
            })
            .await
        }));
    }
    while sf.in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    tx.send(true).unwrap();
    for t in tasks {
        // The caller's task does not panic: it gets an error.
        assert_eq!(t.await.expect("no panic re-raised").0, Err(Panicked));
    }
    assert_eq!(sf.in_flight(), 0);
    let (v, _) = sf.run(1, None, None, || async { 5 }.boxed()).await;
    assert_eq!(v, Ok(5));
}
