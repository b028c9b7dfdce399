use super::*;
use crate::export::test_span::test_span;

fn span() -> Queued {
    Queued::Span(test_span(0, "queued", Vec::new()))
}

/// Takes a batch and settles it at once; returns its length.
fn take(queue: &SpanQueue) -> usize {
    let (taken, held) = queue.take_items();
    queue.settle(held, Room::default());
    taken.len()
}

fn signal_pending(queue: &SpanQueue) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime
        .block_on(async { tokio::time::timeout(std::time::Duration::from_millis(10), queue.signalled()).await.is_ok() })
}

#[test]
fn signals_when_it_stops_being_empty_and_when_a_batch_is_full_only() {
    let queue = SpanQueue::new(10, usize::MAX, 3);
    queue.push(span()).unwrap();
    assert!(signal_pending(&queue), "first span");
    queue.push(span()).unwrap();
    assert!(!signal_pending(&queue), "second span");
    queue.push(span()).unwrap();
    assert!(signal_pending(&queue), "full batch");
    assert!(queue.has_full_batch());
    assert_eq!(take(&queue), 3);
    queue.push(span()).unwrap();
    assert!(signal_pending(&queue), "first span again");
}

#[test]
fn refuses_past_capacity_and_after_close() {
    let queue = SpanQueue::new(2, usize::MAX, 5);
    queue.push(span()).unwrap();
    queue.push(span()).unwrap();
    assert_eq!(queue.push(span()), Err(Refused::Full));
    assert_eq!(queue.close(), 2);
    assert_eq!(queue.push(span()), Err(Refused::Closed));
    assert_eq!(queue.len(), 0);
}

#[test]
fn refuses_past_its_bytes_and_takes_again_once_drained() {
    let one = span().bytes();
    let queue = SpanQueue::new(usize::MAX, 2 * one + one / 2, 5);
    queue.push(span()).unwrap();
    queue.push(span()).unwrap();
    assert_eq!(queue.push(span()), Err(Refused::Full));
    let (taken, held) = queue.take_items();
    assert_eq!(taken.len(), 2);
    assert_eq!(queue.push(span()), Err(Refused::Full), "the room is held until the batch is settled");
    queue.settle(held, Room::default());
    queue.push(span()).unwrap();
}

#[test]
fn what_waits_keeps_its_room_until_released() {
    let one = span().bytes();
    let queue = SpanQueue::new(usize::MAX, 3 * one, 5);
    queue.push(span()).unwrap();
    queue.push(span()).unwrap();
    let (_, held) = queue.take_items();
    let waiting = Room { spans: 2, bytes: one };
    queue.settle(held, waiting);
    queue.push(span()).unwrap();
    queue.push(span()).unwrap();
    assert_eq!(queue.push(span()), Err(Refused::Full), "waiting and queued share the budget");
    queue.release(waiting);
    queue.push(span()).unwrap();
}

#[test]
fn every_threads_spans_are_taken_and_the_bound_holds_over_all_of_them() {
    let queue = Arc::new(SpanQueue::new(100, usize::MAX, 1000));
    let accepted: usize = (0..4)
        .map(|_| {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || (0..50).filter(|_| queue.push(span()).is_ok()).count())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .sum();
    // Each lane may hold one chunk (here 1 span) of room unused.
    assert!((96..=100).contains(&accepted), "{accepted} of 200 accepted under a bound of 100");
    assert_eq!(queue.len(), accepted);
    assert_eq!(take(&queue), accepted, "the lanes of ended threads are taken too");
    assert_eq!(queue.len(), 0);
    // Their threads ended: their lanes are gone, and with them the room
    // they held.
    assert!((0..100).all(|_| queue.push(span()).is_ok()), "the whole bound is free again");
    assert_eq!(queue.push(span()), Err(Refused::Full));
}

#[test]
fn a_queue_takes_in_turns_from_every_lane() {
    let queue = Arc::new(SpanQueue::new(usize::MAX, usize::MAX, 2));
    let (pushed, done) = std::sync::mpsc::channel();
    let (hold, held) = std::sync::mpsc::channel::<()>();
    let other = {
        let queue = Arc::clone(&queue);
        std::thread::spawn(move || {
            for _ in 0..4 {
                queue.push(span()).unwrap();
            }
            pushed.send(()).unwrap();
            // Alive, so that its lane stays.
            let _ = held.recv();
        })
    };
    done.recv().unwrap();
    for _ in 0..4 {
        queue.push(span()).unwrap();
    }
    let taken: usize = (0..4).map(|_| take(&queue)).sum();
    assert_eq!(taken, 8, "batches of two from both lanes");
    drop(hold);
    other.join().unwrap();
}
