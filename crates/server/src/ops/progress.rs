//! Progress of a long command on standard error: a bar with the rate and the time left on a
//! terminal, a plain line every few seconds otherwise (a log, a CI job).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain lines come.
const EVERY: Duration = Duration::from_secs(5);

/// The progress of one command.
pub struct Progress {
    what: String,
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    rows: u64,
    /// What the bar measures against (bytes of a file, rows of a feed), when known.
    total: Option<u64>,
    done: u64,
}

impl Progress {
    /// Progress towards `total` units (`None`: unknown), labelled `what`.
    pub fn new(what: impl Into<String>, total: Option<u64>) -> Progress {
        let what = what.into();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            };
            let template = if total.is_some() {
                "{prefix} [{bar:30}] {percent:>3}% {msg}, {elapsed} so far, about {eta} left"
            } else {
                "{prefix} {spinner} {msg}, {elapsed} so far"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(what.clone());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress { what, bar, started: now, last_line: now, rows: 0, total, done: 0 }
    }

    /// `rows` more rows handled; `done` units of the total reached.
    pub fn advance(&mut self, rows: u64, done: u64) {
        self.rows += rows;
        self.done = done;
        let rate = self.rate();
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(format!("{} rows, {} rows/s", self.rows, rate));
            }
            None if self.last_line.elapsed() >= EVERY => {
                self.last_line = Instant::now();
                let share = match self.total {
                    Some(total) if total > 0 => format!(", {:.0}%", 100.0 * done.min(total) as f64 / total as f64),
                    _ => String::new(),
                };
                eprintln!("{}: {} rows, {} rows/s{share}", self.what, self.rows, rate);
            }
            None => {}
        }
    }

    /// Rows a second since the start.
    fn rate(&self) -> u64 {
        let seconds = self.started.elapsed().as_secs_f64();
        if seconds > 0.0 { (self.rows as f64 / seconds) as u64 } else { 0 }
    }

    /// Clears the bar, leaving the terminal to the summary that follows.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// Prints a line above the bar (or as a plain line).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
}
