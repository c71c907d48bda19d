//! Where log lines go: a shared buffer that a thread of its own writes out every few
//! milliseconds, in one system call for everything that has gathered.
//!
//! Every request logs a line. Writing it to stderr from the request costs a system call each;
//! handing it over a channel to a writer thread costs a wake-up of that thread for nearly every
//! line under load, which showed in profiles of the update path as time in the scheduler. Here a
//! request only appends its line to a buffer under a lock; the writer wakes on its own clock, or
//! early when the buffer grows large. No line is dropped: a request that finds the buffer full
//! waits until the writer has taken it. A line is out within [`INTERVAL`] of being logged, and
//! [`SinkGuard`] writes the rest when it is dropped at exit.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// How long lines wait at most before they are written.
pub const INTERVAL: Duration = Duration::from_millis(10);
/// Past this many buffered bytes, the writer is woken before its interval is up.
const EARLY: usize = 256 * 1024;
/// Past this many, requests that log wait for the writer.
const FULL: usize = 8 * 1024 * 1024;

struct Shared {
    state: Mutex<State>,
    /// Signalled when lines are waiting past [`EARLY`] or the sink closes (the writer waits on it).
    wake: Condvar,
    /// Signalled when the writer has taken the buffer (full requests wait on it).
    taken: Condvar,
}

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    closed: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the bytes half-changed in a way that
        // matters for a log; keep logging.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The `MakeWriter` side: cheap to clone, one per event.
#[derive(Clone)]
pub struct Sink {
    shared: Arc<Shared>,
}

/// Stops the writer and writes out what is left when dropped.
pub struct SinkGuard {
    shared: Arc<Shared>,
    thread: Option<thread::JoinHandle<()>>,
}

/// Starts the writer thread over `out`.
pub fn start(out: impl Write + Send + 'static) -> std::io::Result<(Sink, SinkGuard)> {
    let shared = Arc::new(Shared { state: Mutex::new(State::default()), wake: Condvar::new(), taken: Condvar::new() });
    let writer = Arc::clone(&shared);
    let thread = thread::Builder::new().name("parley-log".into()).spawn(move || write_out(&writer, out))?;
    Ok((Sink { shared: Arc::clone(&shared) }, SinkGuard { shared, thread: Some(thread) }))
}

fn write_out(shared: &Shared, mut out: impl Write) {
    let mut spare = Vec::new();
    loop {
        let closed = {
            let mut state = shared.state();
            if !state.closed && state.lines.len() < EARLY {
                state = shared.wake.wait_timeout(state, INTERVAL).map(|(s, _)| s).unwrap_or_else(|p| p.into_inner().0);
            }
            std::mem::swap(&mut state.lines, &mut spare);
            shared.taken.notify_all();
            state.closed
        };
        if spare.is_empty() {
            if closed {
                return;
            }
            continue;
        }
        // Nowhere to report a failure to write the log; the lines are lost, the service goes on.
        let _ = out.write_all(&spare).and_then(|()| out.flush());
        spare.clear();
    }
}

impl Write for &Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut state = self.shared.state();
        while state.lines.len() >= FULL && !state.closed {
            self.shared.wake.notify_one();
            state = self.shared.taken.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state.lines.extend_from_slice(bytes);
        if state.lines.len() >= EARLY {
            self.shared.wake.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Each event writes through a borrow of the sink: no reference count moves per line.
impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Sink {
    type Writer = &'a Sink;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Drop for SinkGuard {
    fn drop(&mut self) {
        self.shared.state().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test can read back, counting the system calls it would have made.
    #[derive(Clone, Default)]
    struct Recorder {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
    }

    impl Write for Recorder {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.bytes.lock().unwrap().extend_from_slice(bytes);
            *self.writes.lock().unwrap() += 1;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(recorder: &Recorder) -> Vec<String> {
        String::from_utf8(recorder.bytes.lock().unwrap().clone()).unwrap().lines().map(str::to_owned).collect()
    }

    #[test]
    fn lines_from_many_threads_are_written_whole_and_in_few_writes() {
        let recorder = Recorder::default();
        let (sink, guard) = start(recorder.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                thread::spawn(move || {
                    for i in 0..5000 {
                        (&sink).write_all(format!("thread {t} line {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let lines = lines(&recorder);
        assert_eq!(lines.len(), 20_000);
        for t in 0..4 {
            let own: Vec<&String> = lines.iter().filter(|l| l.starts_with(&format!("thread {t} "))).collect();
            assert_eq!(own.len(), 5000, "thread {t}");
            assert!(own.iter().enumerate().all(|(i, l)| **l == format!("thread {t} line {i}")), "in order, whole");
        }
        assert!(*recorder.writes.lock().unwrap() < 1000, "{} writes", recorder.writes.lock().unwrap());
    }

    #[test]
    fn a_line_is_written_within_the_interval_without_closing() {
        let recorder = Recorder::default();
        let (sink, _guard) = start(recorder.clone()).unwrap();
        (&sink).write_all(b"one line\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while lines(&recorder).is_empty() {
            assert!(std::time::Instant::now() < deadline, "the line was never written");
            thread::sleep(INTERVAL);
        }
        assert_eq!(lines(&recorder), ["one line"]);
    }

    #[test]
    fn a_full_buffer_makes_the_logger_wait_instead_of_dropping_lines() {
        let recorder = Recorder::default();
        let (sink, guard) = start(recorder.clone()).unwrap();
        // Several times the bound, as fast as one thread can append.
        let line = vec![b'x'; 1023];
        let mut writer = &sink;
        let count = 4 * FULL / 1024;
        for _ in 0..count {
            writer.write_all(&line).unwrap();
            writer.write_all(b"\n").unwrap();
            assert!(sink.shared.state().lines.len() <= FULL + 1024, "the buffer passed its bound");
        }
        drop(guard);
        assert_eq!(lines(&recorder).len(), count);
    }
}
