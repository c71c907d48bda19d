//! A report drawn as the chart the dashboard shows, as SVG written here: a line per series for
//! numbers over time, bars for top-N, a ring for breakdowns, a heat map for weekday × hour, tiles
//! for headline numbers. Sized to paste into an e-mail or a wiki.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use parley_core::insights::{Chart, Item, Report};

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 420.0;
/// Series colours, distinguishable in light and dark surroundings.
const PALETTE: [&str; 8] = ["#2f6fdf", "#e0663a", "#2a9d6f", "#a855c7", "#d4a21a", "#d0417e", "#3aa6c0", "#6b7280"];

/// The chart of a report's items. `series_name` names a project for the legend.
pub fn svg(report: Report, title: &str, items: &[Item], series_name: &dyn Fn(&Item) -> String) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let height = if report.chart() == Chart::HeatMap { 300.0 } else { HEIGHT };
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" \
         font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\
         <text x=\"16\" y=\"26\" font-size=\"16\" font-weight=\"bold\" fill=\"#111827\">{}</text>",
        escape(title)
    );
    let drawn: Vec<Item> = items.iter().filter(|item| report.draws(&item.measure)).cloned().collect();
    if drawn.is_empty() {
        let _ = write!(out, "<text x=\"16\" y=\"70\" fill=\"#4b5563\">Nothing to show in this range.</text>");
    } else {
        match report.chart() {
            Chart::Line => line(&mut out, &drawn, series_name),
            Chart::Bars => bars(&mut out, &drawn, series_name),
            Chart::Ring => ring(&mut out, &drawn, series_name),
            Chart::HeatMap => heat_map(&mut out, &drawn, series_name),
            Chart::Tiles => tiles(&mut out, &drawn, series_name),
        }
    }
    out.push_str("</svg>");
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters, with an ellipsis when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn value_of(item: &Item) -> Option<f64> {
    item.value.as_f64()
}

/// A number as a label: whole numbers plainly, others with up to two decimals, large ones with
/// a thousands letter.
fn label(value: f64) -> String {
    let abs = value.abs();
    if abs >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if abs >= 1e4 {
        format!("{:.1}k", value / 1e3)
    } else if value.fract() == 0.0 {
        format!("{value}")
    } else {
        format!("{value:.2}").trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A round upper end for an axis that holds `max`.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|m| *m >= max).unwrap_or(max)
}

/// The series of items: one per project and measure, in first-seen order.
fn series<'a>(items: &'a [Item], series_name: &dyn Fn(&Item) -> String) -> Vec<(String, Vec<&'a Item>)> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<&Item>> = BTreeMap::new();
    let measures: std::collections::BTreeSet<&str> = items.iter().map(|i| i.measure.as_str()).collect();
    for item in items {
        let project = series_name(item);
        let name = match (project.is_empty(), measures.len() > 1) {
            (true, _) => item.measure.clone(),
            (false, true) => format!("{project} · {}", item.measure),
            (false, false) => project,
        };
        if !groups.contains_key(&name) {
            order.push(name.clone());
        }
        groups.entry(name).or_default().push(item);
    }
    order
        .into_iter()
        .map(|name| {
            let items = groups.remove(&name).unwrap_or_default();
            (name, items)
        })
        .collect()
}

fn legend(out: &mut String, names: &[String], y: f64) {
    let mut x = 16.0;
    for (i, name) in names.iter().enumerate() {
        let name = clip(name, 40);
        let _ = write!(
            out,
            "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" rx=\"2\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"#374151\">{}</text>",
            y - 10.0,
            PALETTE[i % PALETTE.len()],
            x + 16.0,
            y,
            escape(&name)
        );
        x += 28.0 + 7.0 * name.chars().count() as f64;
    }
}

fn line(out: &mut String, items: &[Item], series_name: &dyn Fn(&Item) -> String) {
    let all = series(items, series_name);
    let buckets: Vec<&str> = {
        let mut seen = Vec::new();
        for item in items {
            let d = item.dimension.as_deref().unwrap_or("");
            if !seen.contains(&d) {
                seen.push(d);
            }
        }
        seen
    };
    let (left, right, top, bottom) = (64.0, WIDTH - 24.0, 60.0, HEIGHT - 56.0);
    let max = nice_max(items.iter().filter_map(value_of).fold(0.0, f64::max));
    let x_of = |i: usize| {
        if buckets.len() <= 1 {
            (left + right) / 2.0
        } else {
            left + (right - left) * i as f64 / (buckets.len() - 1) as f64
        }
    };
    let y_of = |v: f64| bottom - (bottom - top) * v / max;
    for step in 0..=4 {
        let v = max * f64::from(step) / 4.0;
        let y = y_of(v);
        let _ = write!(
            out,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\" stroke=\"#e5e7eb\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#6b7280\">{}</text>",
            left - 6.0,
            y + 4.0,
            label(v)
        );
    }
    let ticks = buckets.len().min(6);
    // Days and longer buckets start at local midnight: their dates say enough.
    let daily = buckets.iter().all(|b| b.get(10..16) == Some("T00:00"));
    for t in 0..ticks {
        let i = if ticks <= 1 { 0 } else { t * (buckets.len() - 1) / (ticks - 1) };
        let text: String = if daily {
            buckets[i].chars().take(10).collect()
        } else {
            buckets[i].chars().skip(5).take(11).collect::<String>().replace('T', " ")
        };
        // The first and last labels end inside the drawing.
        let anchor = match (t, ticks) {
            (_, 1) => "middle",
            (0, _) => "start",
            (t, n) if t + 1 == n => "end",
            _ => "middle",
        };
        let x = match anchor {
            "start" => x_of(i) - 8.0,
            "end" => x_of(i) + 8.0,
            _ => x_of(i),
        };
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"{anchor}\" fill=\"#6b7280\">{}</text>",
            bottom + 18.0,
            escape(&text)
        );
    }
    for (n, (_, points)) in all.iter().enumerate() {
        let colour = PALETTE[n % PALETTE.len()];
        let mut path = String::new();
        let mut pen_down = false;
        for item in points {
            let i = buckets.iter().position(|b| *b == item.dimension.as_deref().unwrap_or("")).unwrap_or(0);
            match value_of(item) {
                Some(v) => {
                    let _ = write!(path, "{}{:.1},{:.1} ", if pen_down { "L" } else { "M" }, x_of(i), y_of(v));
                    pen_down = true;
                }
                // A gap where there is nothing to average.
                None => pen_down = false,
            }
        }
        let _ = write!(out, "<path d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>", path.trim_end());
        if points.len() <= 60 {
            for item in points {
                let i = buckets.iter().position(|b| *b == item.dimension.as_deref().unwrap_or("")).unwrap_or(0);
                if let Some(v) = value_of(item) {
                    let _ = write!(
                        out,
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{colour}\"/>",
                        x_of(i),
                        y_of(v)
                    );
                }
            }
        }
    }
    let names: Vec<String> = all.into_iter().map(|(name, _)| name).collect();
    legend(out, &names, HEIGHT - 14.0);
}

fn bars(out: &mut String, items: &[Item], series_name: &dyn Fn(&Item) -> String) {
    let all = series(items, series_name);
    let rows = items.len().min(24);
    let (left, right, top) = (220.0, WIDTH - 70.0, 48.0);
    let bottom = HEIGHT - 34.0;
    let row = ((bottom - top) / rows.max(1) as f64).min(28.0);
    let max = nice_max(items.iter().filter_map(value_of).fold(0.0, f64::max));
    let measures = items.iter().map(|i| i.measure.as_str()).collect::<std::collections::BTreeSet<_>>().len();
    let mut drawn = 0;
    for (n, (_, members)) in all.iter().enumerate() {
        for item in members {
            if drawn >= rows {
                break;
            }
            let y = top + row * drawn as f64;
            let v = value_of(item).unwrap_or(0.0);
            let width = (right - left) * v / max;
            let name = item.dimension.clone().unwrap_or_else(|| "(none)".into());
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#374151\">{}</text>\
                 <rect x=\"{left}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{:.1}\" rx=\"2\" fill=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#111827\">{}</text>",
                left - 8.0,
                y + row * 0.65,
                escape(&clip(&if measures > 1 { format!("{name} · {}", item.measure) } else { name }, 34)),
                y + row * 0.15,
                row * 0.7,
                PALETTE[n % PALETTE.len()],
                left + width + 6.0,
                y + row * 0.65,
                label(v)
            );
            drawn += 1;
        }
    }
    if all.len() > 1 {
        let names: Vec<String> = all.into_iter().map(|(name, _)| name).collect();
        legend(out, &names, HEIGHT - 10.0);
    }
}

fn ring(out: &mut String, items: &[Item], series_name: &dyn Fn(&Item) -> String) {
    let all = series(items, series_name);
    let rings = all.len().min(3);
    let radius = 110.0;
    for (r, (name, members)) in all.iter().take(rings).enumerate() {
        let cx = 150.0 + r as f64 * 250.0;
        let cy = 200.0;
        let total: f64 = members.iter().filter_map(|i| value_of(i)).sum();
        let _ = write!(
            out,
            "<text x=\"{cx}\" y=\"{}\" text-anchor=\"middle\" fill=\"#374151\">{}</text>\
             <text x=\"{cx}\" y=\"{}\" text-anchor=\"middle\" font-size=\"20\" font-weight=\"bold\" fill=\"#111827\">{}</text>",
            cy - 6.0,
            escape(&clip(name, 28)),
            cy + 18.0,
            label(total)
        );
        if total <= 0.0 {
            continue;
        }
        let mut angle = -std::f64::consts::FRAC_PI_2;
        for (k, item) in members.iter().enumerate() {
            let share = value_of(item).unwrap_or(0.0) / total;
            if share <= 0.0 {
                continue;
            }
            let colour = PALETTE[k % PALETTE.len()];
            if share >= 0.9999 {
                let _ = write!(
                    out,
                    "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"36\"/>",
                    radius - 18.0
                );
                continue;
            }
            let end = angle + share * std::f64::consts::TAU;
            let (r0, r1) = (radius - 36.0, radius);
            let large = if share > 0.5 { 1 } else { 0 };
            let p = |a: f64, r: f64| (cx + r * a.cos(), cy + r * a.sin());
            let (a, b, c, d) = (p(angle, r1), p(end, r1), p(end, r0), p(angle, r0));
            let _ = write!(
                out,
                "<path d=\"M{:.1},{:.1} A{r1},{r1} 0 {large} 1 {:.1},{:.1} L{:.1},{:.1} A{r0},{r0} 0 {large} 0 {:.1},{:.1} Z\" fill=\"{colour}\"/>",
                a.0, a.1, b.0, b.1, c.0, c.1, d.0, d.1
            );
            angle = end;
        }
    }
    // The categories of the first ring, with their shares.
    if let Some((_, members)) = all.first() {
        let total: f64 = members.iter().filter_map(|i| value_of(i)).sum();
        let x = if rings > 1 { 16.0 } else { 330.0 };
        let top = if rings > 1 { HEIGHT - 50.0 } else { 70.0 };
        for (k, item) in members.iter().take(if rings > 1 { 4 } else { 14 }).enumerate() {
            let v = value_of(item).unwrap_or(0.0);
            let share = if total > 0.0 { 100.0 * v / total } else { 0.0 };
            let (x, y) = if rings > 1 { (x + 190.0 * k as f64, top) } else { (x, top + 22.0 * k as f64) };
            let _ = write!(
                out,
                "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" rx=\"2\" fill=\"{}\"/>\
                 <text x=\"{}\" y=\"{y}\" fill=\"#374151\">{} · {} ({share:.0}%)</text>",
                y - 10.0,
                PALETTE[k % PALETTE.len()],
                x + 18.0,
                escape(&clip(item.dimension.as_deref().unwrap_or("(none)"), 24)),
                label(v)
            );
        }
    }
}

fn heat_map(out: &mut String, items: &[Item], series_name: &dyn Fn(&Item) -> String) {
    let all = series(items, series_name);
    let Some((name, cells)) = all.first() else { return };
    let max = cells.iter().filter_map(|i| value_of(i)).fold(0.0, f64::max).max(1.0);
    let (left, top, size) = (56.0, 56.0, 29.0);
    for (i, item) in cells.iter().enumerate().take(168) {
        let (day, hour) = (i / 24, i % 24);
        let v = value_of(item).unwrap_or(0.0);
        let opacity = if v > 0.0 { 0.12 + 0.88 * v / max } else { 0.04 };
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{}\" height=\"{}\" rx=\"2\" fill=\"#2f6fdf\" fill-opacity=\"{opacity:.2}\"><title>{}: {}</title></rect>",
            left + hour as f64 * size,
            top + day as f64 * size,
            size - 2.0,
            size - 2.0,
            escape(item.dimension.as_deref().unwrap_or("")),
            label(v)
        );
        if hour == 0 {
            let day_name: String = item.dimension.as_deref().unwrap_or("").chars().take(3).collect();
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#374151\">{}</text>",
                left - 6.0,
                top + day as f64 * size + 18.0,
                escape(&day_name)
            );
        }
        if day == 6 && hour % 3 == 0 {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#6b7280\">{hour:02}</text>",
                left + hour as f64 * size + 13.0,
                top + 7.0 * size + 14.0
            );
        }
    }
    if all.len() > 1 || !series_name(cells[0]).is_empty() {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"26\" text-anchor=\"end\" fill=\"#374151\">{}</text>",
            WIDTH - 16.0,
            escape(&clip(name, 50))
        );
    }
}

fn tiles(out: &mut String, items: &[Item], series_name: &dyn Fn(&Item) -> String) {
    let per_row = 3;
    let (w, h) = (244.0, 96.0);
    for (i, item) in items.iter().take(12).enumerate() {
        let (col, row) = (i % per_row, i / per_row);
        let (x, y) = (16.0 + col as f64 * (w + 12.0), 48.0 + row as f64 * (h + 12.0));
        let project = series_name(item);
        let caption =
            if project.is_empty() { item.measure.clone() } else { format!("{} · {}", item.measure, project) };
        let value = value_of(item).map_or_else(|| "–".to_owned(), label);
        let _ = write!(
            out,
            "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"8\" fill=\"#f3f4f6\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"#4b5563\">{}</text>\
             <text x=\"{}\" y=\"{}\" font-size=\"32\" font-weight=\"bold\" fill=\"#111827\">{}</text>",
            x + 14.0,
            y + 26.0,
            escape(&clip(&caption, 34)),
            x + 14.0,
            y + 72.0,
            escape(&value)
        );
    }
}

/// The chart as a PNG, drawn from its SVG at twice its size, with the system's fonts.
pub fn png(svg: &str) -> Result<Vec<u8>, parley_core::Error> {
    use resvg::{tiny_skia, usvg};
    static FONTS: std::sync::LazyLock<std::sync::Arc<usvg::fontdb::Database>> = std::sync::LazyLock::new(|| {
        let mut fonts = usvg::fontdb::Database::new();
        fonts.load_system_fonts();
        fonts.set_sans_serif_family("DejaVu Sans");
        std::sync::Arc::new(fonts)
    });
    let fault =
        |what: &str, e: &dyn std::fmt::Display| parley_core::Error::internal(format!("drawing a chart, {what}: {e}"));
    let options = usvg::Options { fontdb: FONTS.clone(), ..usvg::Options::default() };
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| fault("reading its SVG", &e))?;
    let scale = 2.0;
    let size = tree.size().to_int_size().scale_by(scale).ok_or_else(|| fault("sizing", &"empty"))?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).ok_or_else(|| fault("sizing", &"empty"))?;
    resvg::render(&tree, tiny_skia::Transform::from_scale(scale, scale), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| fault("encoding", &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(dimension: &str, measure: &str, value: serde_json::Value) -> Item {
        Item { project: None, dimension: Some(dimension.into()), measure: measure.into(), value }
    }

    #[test]
    fn every_kind_of_chart_is_well_formed_svg_and_escapes_text() {
        let none = |_: &Item| String::new();
        let cases = [
            (
                Report::Sessions,
                vec![
                    item("2026-01-01T00:00:00+00:00", "sessions", json!(3)),
                    item("2026-01-02T00:00:00+00:00", "sessions", json!(null)),
                ],
            ),
            (Report::TopIntents, vec![item("<order & pay>", "count", json!(7))]),
            (Report::SessionsByChannel, vec![item("web", "sessions", json!(2)), item("sms", "sessions", json!(1))]),
            (
                Report::HandoversByHour,
                parley_core::insights::weekday_hours().iter().map(|c| item(c, "handovers", json!(1))).collect(),
            ),
            (Report::Overview, vec![item("total", "sessions", json!(12))]),
        ];
        for (report, items) in cases {
            let svg = svg(report, "a \"title\"", &items, &none);
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{report}");
            assert!(!svg.contains("<order"), "{report}: text is escaped");
            assert!(svg.contains("a &quot;title&quot;"));
            let mut reader = quick_xml::Reader::from_str(&svg);
            while reader.read_event().expect("well-formed") != quick_xml::events::Event::Eof {}
        }
    }
}
