//! The self-contained HTML report: tables plus inline SVG plots drawn with
//! plotters' SVG backend (service level and queue length over time, wait-time
//! distribution, occupancy by agent group). No external scripts, styles or fonts.

use plotters::prelude::*;

use super::Report;
use crate::error::{Error, Result};

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn plot_error(plot: &str) -> impl Fn(String) -> Error + '_ {
    move |e| Error::Invalid(format!("drawing the `{plot}` plot: {e}"))
}

/// Lines over time: one (name, points) per series.
fn line_plot(title: &str, y_desc: &str, series: &[(String, Vec<(f64, f64)>)], y_max: Option<f64>) -> Result<String> {
    let err = plot_error(title);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let x_max = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)).fold(0.0, f64::max).max(1e-9);
        let x_min = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)).fold(x_max, f64::min);
        let y_top = y_max.unwrap_or_else(|| {
            series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)).fold(0.0, f64::max).max(1.0) * 1.1
        });
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(x_min..x_max.max(x_min + 1e-9), 0.0..y_top)
            .map_err(|e| err(e.to_string()))?;
        chart.configure_mesh().x_desc("hours").y_desc(y_desc).draw().map_err(|e| err(e.to_string()))?;
        for (i, (name, points)) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                .map_err(|e| err(e.to_string()))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

/// Bars: (label, value) each; `fraction` draws a 0-1 axis.
fn bar_plot(title: &str, x_desc: &str, y_desc: &str, bars: &[(String, f64)], fraction: bool) -> Result<String> {
    let err = plot_error(title);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let n = bars.len().max(1) as f64;
        let y_top = if fraction { 1.0 } else { bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1.0) * 1.1 };
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        let formatter = move |x: &f64| -> String {
            let i = x.floor();
            if i >= 0.0 && (i as usize) < labels.len() && (x - i - 0.5).abs() < 1e-6 {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(0.0..n, 0.0..y_top)
            .map_err(|e| err(e.to_string()))?;
        let few = bars.len() <= 12;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(x_desc).y_desc(y_desc).disable_x_mesh();
        if few {
            mesh.x_labels(bars.len() * 2 + 1).x_label_formatter(&formatter);
        }
        mesh.draw().map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let color = if few { COLORS[i % COLORS.len()] } else { COLORS[0] };
                let (x0, x1) = if few { (i as f64 + 0.15, i as f64 + 0.85) } else { (i as f64, i as f64 + 1.0) };
                Rectangle::new([(x0, 0.0), (x1, *v)], color.filled())
            }))
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1} %", v * 100.0)).unwrap_or_else(|| "–".into())
}

fn secs(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1} s")).unwrap_or_else(|| "–".into())
}

/// The start of a report page titled `title`, up to its heading: the shared
/// style, `max_width_px` wide, with `extra_css`.
fn page_start(title: &str, max_width_px: u32, extra_css: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:{max_width_px}px;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0}}th,td{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
         th:first-child,td:first-child{{text-align:left}}th{{background:#f0f0f0}}h2{{margin-top:1.6em}}\
         {extra_css}.note{{color:#555;font-size:90%}}svg{{max-width:100%;height:auto}}</style></head><body>\n\
         <h1>{title}</h1>\n",
        title = escape(title)
    )
}

/// A queue's service level per interval as plot points (hours, share).
fn service_level_points(q: &super::QueueReport, interval_s: f64) -> Vec<(f64, f64)> {
    q.intervals.iter().filter_map(|i| i.service_level.map(|sl| ((i.start_s + interval_s / 2.0) / 3600.0, sl))).collect()
}

/// Render `report` as a self-contained HTML page titled `title`.
pub fn render(report: &Report, title: &str) -> Result<String> {
    let mut html = page_start(title, 1000, "");
    html.push_str(&format!(
        "<p>Seed {}, {:.1} simulated hours ({:.1} h warm-up excluded), {} items created, {} still open at the end.</p>\n",
        report.seed,
        report.duration_s / 3600.0,
        report.warmup_s / 3600.0,
        report.items_created,
        report.items_open_at_end
    ));

    // Queues.
    html.push_str("<h2>Queues</h2>\n<table><tr><th>queue</th><th>department</th><th>offered</th><th>answered</th><th>abandoned (short)</th><th>service level</th><th>ASA</th><th>AHT</th><th>longest wait</th><th>occupancy</th><th>FCR</th><th>before due</th><th>backlog</th></tr>\n");
    for (name, q) in &report.queues {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{} @ {} s</td><td>{}</td><td>{}</td><td>{:.0} s</td><td>{}</td><td>{}</td><td>{}</td><td>{} (oldest {:.0} s)</td></tr>\n",
            escape(name),
            escape(&q.department),
            q.offered,
            q.answered,
            q.abandoned,
            q.short_abandoned,
            pct(q.service_level),
            q.service_level_threshold_s,
            secs(q.asa_s),
            secs(q.aht_s),
            q.longest_wait_s,
            pct(q.occupancy),
            pct(q.fcr),
            pct(q.completed_before_due),
            q.backlog.waiting,
            q.backlog.oldest_s,
        ));
        if let Some(e) = &q.erlang_c {
            html.push_str(&format!(
                "<tr class=\"note\"><td>&nbsp;&nbsp;Erlang C</td><td>A = {:.2}, N = {}</td><td></td><td></td><td></td><td>{}</td><td>{}</td><td></td><td></td><td>{}</td><td></td><td></td><td>P(wait) {:.3}</td></tr>\n",
                e.load_erlangs,
                e.agents,
                pct(Some(e.service_level)),
                secs(Some(e.asa_s)),
                pct(Some(e.occupancy)),
                e.p_wait
            ));
        }
    }
    html.push_str("</table>\n<ul class=\"note\">");
    for (k, v) in &report.definitions {
        html.push_str(&format!("<li><b>{}</b>: {}</li>", escape(k), escape(v)));
    }
    html.push_str("</ul>\n");

    // Plots.
    html.push_str("<h2>Service level over time</h2>\n");
    let sl: Vec<(String, Vec<(f64, f64)>)> = report
        .queues
        .iter()
        .map(|(name, q)| (name.clone(), service_level_points(q, report.interval_s)))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    html.push_str(&line_plot("Service level per interval", "service level", &sl, Some(1.05))?);

    html.push_str("<h2>Queue length over time</h2>\n");
    let lengths: Vec<(String, Vec<(f64, f64)>)> = report
        .queue_length_samples
        .queues
        .iter()
        .map(|(name, values)| {
            let points =
                report.queue_length_samples.t_s.iter().zip(values).map(|(t, v)| (t / 3600.0, *v as f64)).collect();
            (name.clone(), points)
        })
        .collect();
    html.push_str(&line_plot("Items waiting", "items waiting", &lengths, None)?);

    html.push_str("<h2>Wait-time distribution (answered items)</h2>\n");
    for (name, q) in &report.queues {
        let total: u64 = q.wait_histogram.counts.iter().sum();
        if total == 0 {
            continue;
        }
        let last = q.wait_histogram.counts.iter().rposition(|&c| c > 0).unwrap_or(0);
        let bars: Vec<(String, f64)> = q.wait_histogram.counts[..=last]
            .iter()
            .enumerate()
            .map(|(i, &c)| (format!("{:.0}", i as f64 * q.wait_histogram.bin_s), c as f64 / total as f64))
            .collect();
        let title =
            format!("{name}: share of answered items by wait ({} s bins, last bin open-ended)", q.wait_histogram.bin_s);
        html.push_str(&bar_plot(&title, "wait (bins from 0 s)", "share", &bars, false)?);
    }

    html.push_str("<h2>Occupancy by agent group</h2>\n");
    let occupancy: Vec<(String, f64)> =
        report.agent_groups.iter().map(|(name, g)| (name.clone(), g.occupancy.unwrap_or(0.0))).collect();
    if !occupancy.is_empty() {
        html.push_str(&bar_plot("Occupancy by agent group", "agent group", "occupancy", &occupancy, true)?);
    }
    html.push_str("<table><tr><th>group</th><th>agents</th><th>occupancy</th><th>busy h</th><th>idle h</th><th>away h</th></tr>\n");
    for (name, g) in &report.agent_groups {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td></tr>\n",
            escape(name),
            g.agents,
            pct(g.occupancy),
            g.busy_h,
            g.idle_h,
            g.away_h
        ));
    }
    html.push_str("</table>\n");

    // Departments and plugins.
    html.push_str("<h2>Departments</h2>\n<table><tr><th>department</th><th>offered</th><th>answered</th><th>abandoned</th><th>service level</th><th>ASA</th><th>AHT</th><th>FCR</th><th>before due</th><th>rules</th><th>plugin calls</th><th>fallbacks</th><th>p50 latency</th></tr>\n");
    for (name, d) in &report.departments {
        let (rules, calls, fallbacks, latency) = match &d.plugin {
            Some(p) => (
                escape(&p.path),
                p.calls.to_string(),
                p.fallbacks.to_string(),
                p.p50_latency_us.map(|v| format!("{v:.1} µs")).unwrap_or_else(|| "–".into()),
            ),
            None => ("built-in".into(), "–".into(), "–".into(), "–".into()),
        };
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(name),
            d.offered,
            d.answered,
            d.abandoned,
            pct(d.service_level),
            secs(d.asa_s),
            secs(d.aht_s),
            pct(d.fcr),
            pct(d.completed_before_due),
            rules,
            calls,
            fallbacks,
            latency
        ));
    }
    html.push_str("</table>\n");

    // Cases, exceptions.
    let c = &report.cases;
    html.push_str(&format!(
        "<h2>Cases end to end</h2>\n<p>{} cases closed, {} across departments ({} hand-offs). Mean end-to-end time {}, 90th percentile {}; across departments {}.</p>\n",
        c.closed,
        c.cross_department,
        c.handoffs,
        secs(c.mean_s),
        secs(c.p90_s),
        secs(c.cross_department_mean_s)
    ));
    html.push_str(&format!(
        "<h2>Exceptions and alerts</h2>\n<p>{} items went to the exception queue; {} escalation steps; {} supervisor alerts.</p>\n",
        report.exceptions.count, report.escalations, report.alerts
    ));
    if !report.exceptions.open_by_reason.is_empty() {
        html.push_str("<table><tr><th>reason</th><th>open at end</th></tr>");
        for (reason, n) in &report.exceptions.open_by_reason {
            html.push_str(&format!("<tr><td>{}</td><td>{n}</td></tr>", escape(reason)));
        }
        html.push_str("</table>\n");
    }
    html.push_str("</body></html>\n");
    Ok(html)
}

/// Render a backtest's comparison as a self-contained HTML page titled `title`.
pub fn render_backtest(report: &super::backtest::BacktestReport, title: &str) -> Result<String> {
    let mut html = page_start(title, 1100, ".better{color:#176b2c}.worse{color:#a3221b}");
    let candidates: Vec<String> =
        report.candidates.iter().map(|(d, p)| format!("<b>{}</b>: {}", escape(d), escape(p))).collect();
    html.push_str(&format!(
        "<p>{} arrivals ({}) replayed twice: with the rules that were active, and with the candidates ({}). {} arrivals were decided differently.</p>\n",
        report.arrivals,
        escape(&report.traffic_source),
        candidates.join(", "),
        report.decided_differently
    ));
    html.push_str("<ul class=\"note\">");
    for line in &report.inputs {
        html.push_str(&format!("<li>{}</li>", escape(line)));
    }
    html.push_str("</ul>\n");

    // Side by side, with the change coloured by whether it is better.
    let change = |a: Option<f64>, c: Option<f64>, scale: f64, unit: &str, higher_is_better: bool| match (a, c) {
        (Some(a), Some(c)) => {
            let d = (c - a) * scale;
            let class = if d.abs() < 1e-9 {
                ""
            } else if (d > 0.0) == higher_is_better {
                "better"
            } else {
                "worse"
            };
            format!("{:.1} → {:.1}{unit} <span class=\"{class}\">({d:+.1})</span>", a * scale, c * scale)
        }
        _ => "–".to_owned(),
    };
    html.push_str("<h2>Queues</h2>\n<table><tr><th>queue</th><th>department</th><th>offered</th><th>service level</th><th>ASA</th><th>AHT</th><th>abandoned</th><th>FCR</th><th>before due</th><th>backlog at end</th></tr>\n");
    for (name, q) in &report.queues {
        let (a, c) = (&q.active, &q.candidate);
        let count = |a: usize, c: usize, higher_is_better: bool| {
            let d = c as i64 - a as i64;
            let class = if d == 0 {
                ""
            } else if (d > 0) == higher_is_better {
                "better"
            } else {
                "worse"
            };
            format!("{a} → {c} <span class=\"{class}\">({d:+})</span>")
        };
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{} → {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(name),
            escape(&q.department),
            a.offered,
            c.offered,
            change(a.service_level, c.service_level, 100.0, " %", true),
            change(a.asa_s, c.asa_s, 1.0, " s", false),
            change(a.aht_s, c.aht_s, 1.0, " s", false),
            count(a.abandoned as usize, c.abandoned as usize, false),
            change(a.fcr, c.fcr, 100.0, " %", true),
            change(a.completed_before_due, c.completed_before_due, 100.0, " %", true),
            count(a.backlog, c.backlog, false),
        ));
    }
    html.push_str("</table>\n");

    html.push_str("<h2>Service level over time</h2>\n");
    let interval_s = report.active.interval_s;
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (label, run) in [("active", &report.active), ("candidate", &report.candidate)] {
        for (name, q) in &run.queues {
            let points = service_level_points(q, interval_s);
            if !points.is_empty() {
                series.push((format!("{name} ({label})"), points));
            }
        }
    }
    html.push_str(&line_plot("Service level per interval, both runs", "service level", &series, Some(1.05))?);

    html.push_str("<h2>The arrivals whose fate differed most</h2>\n<table><tr><th>arrival</th><th>at</th><th>queue</th><th>active: decided</th><th>outcome</th><th>candidate: decided</th><th>outcome</th></tr>\n");
    let decided = |f: &super::backtest::Fate| match &f.decided {
        Some(d) => format!(
            "{} @ {}{}",
            escape(d.queue.as_deref().unwrap_or("(exception)")),
            d.priority,
            d.reason.as_deref().map(|r| format!(" — {}", escape(r))).unwrap_or_default()
        ),
        None => "–".to_owned(),
    };
    for d in &report.differed_most {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{:.0} s</td><td>{}</td><td>{}</td><td>{} after {:.0} s</td><td>{}</td><td>{} after {:.0} s</td></tr>\n",
            d.arrival,
            d.at_s,
            escape(&d.queue),
            decided(&d.active),
            d.active.outcome,
            d.active.wait_s,
            decided(&d.candidate),
            d.candidate.outcome,
            d.candidate.wait_s
        ));
    }
    html.push_str("</table>\n</body></html>\n");
    Ok(html)
}
