//! One line chart drawn into an SVG string. This is the only code that talks to `plotters`,
//! so the plots themselves are just data turned into series.
//!
//! `plotters` is built without font support: the SVG backend writes `<text>` elements and
//! leaves the glyphs to the viewer, and layout uses a width estimate per character. The
//! margins below are sized for that estimate.

use plotters::coord::combinators::{BindKeyPoints, LogCoord, WithKeyPoints};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

/// Pixel size of every plot.
pub const SIZE: (u32, u32) = (900, 560);

/// How a series' points are joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// Points only.
    None,
    /// A solid line.
    Solid,
    /// A dashed line.
    Dashed,
}

/// What marks each point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// No mark: the line alone.
    None,
    /// A filled dot.
    Dot,
    /// A cross.
    Cross,
}

/// Points drawn in one colour, named in the legend when `label` is set.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text; `None` keeps the series out of the legend.
    pub label: Option<String>,
    /// Colour of line and marks.
    pub color: RGBColor,
    /// How the points are joined.
    pub line: Line,
    /// How each point is marked.
    pub marker: Marker,
    /// `(x, y)` in data units; non-finite points are skipped.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series with no points: a legend entry explaining a line style or marker.
    pub fn legend_only(label: &str, color: RGBColor, line: Line, marker: Marker) -> Self {
        Series {
            label: Some(label.into()),
            color,
            line,
            marker,
            points: Vec::new(),
        }
    }
}

/// How an axis maps values to pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Linear from zero.
    Linear,
    /// Logarithmic; points at or below zero are skipped.
    Log,
    /// Logarithmic when the positive values span more than two decades, else linear.
    Auto,
}

/// Title, axis descriptions and scales of a chart.
#[derive(Clone)]
pub struct Chart<'a> {
    /// Caption above the plot.
    pub title: &'a str,
    /// X axis description, with unit.
    pub x_desc: &'a str,
    /// Y axis description, with unit.
    pub y_desc: &'a str,
    /// X axis scale.
    pub x_scale: Scale,
    /// Y axis scale.
    pub y_scale: Scale,
    /// The corner the data leaves free for the legend.
    pub legend: SeriesLabelPosition,
}

/// Draws `series` as an SVG document; `None` when no series has a point to draw.
pub fn render(chart: &Chart, series: &[Series]) -> anyhow::Result<Option<String>> {
    let finite = keep(series, |(x, y)| x.is_finite() && y.is_finite());
    let x_log = is_log(
        chart.x_scale,
        finite.iter().flat_map(|s| s.points.iter().map(|p| p.0)),
    );
    let y_log = is_log(
        chart.y_scale,
        finite.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
    );
    let drawn = keep(&finite, |(x, y)| (!x_log || x > 0.0) && (!y_log || y > 0.0));
    let (Some(xs), Some(ys)) = (
        bounds(drawn.iter().flat_map(|s| s.points.iter().map(|p| p.0))),
        bounds(drawn.iter().flat_map(|s| s.points.iter().map(|p| p.1))),
    ) else {
        return Ok(None);
    };
    // Headroom above the data keeps the top of the lines clear of the legend box.
    let (x0, x1) = axis(xs, x_log, 1.04);
    let (y0, y1) = axis(ys, y_log, 1.15);
    // A log axis spans magnitudes, so each of its ticks picks its own unit.
    let tops = ((!x_log).then_some(x1), (!y_log).then_some(y1));
    let svg = match (x_log, y_log) {
        (false, false) => draw(chart, &drawn, x0..x1, y0..y1, tops),
        (true, false) => draw(chart, &drawn, log(x0, x1), y0..y1, tops),
        (false, true) => draw(chart, &drawn, x0..x1, log(y0, y1), tops),
        (true, true) => draw(chart, &drawn, log(x0, x1), log(y0, y1), tops),
    }?;
    Ok(Some(svg))
}

fn log(lo: f64, hi: f64) -> WithKeyPoints<LogCoord<f64>> {
    (lo..hi).log_scale().with_key_points(log_ticks(lo, hi))
}

/// Whether an axis over `values` is drawn logarithmically.
pub fn is_log(scale: Scale, values: impl Iterator<Item = f64>) -> bool {
    match scale {
        Scale::Linear => false,
        Scale::Log => true,
        Scale::Auto => bounds(values.filter(|v| *v > 0.0)).is_some_and(|(lo, hi)| hi / lo > 100.0),
    }
}

/// A tick label on an axis reaching `top`: thousands as `k` or millions as `M` when the axis
/// needs them, the same for every tick of the axis (`250k`, `1.5M`, `0.25`).
pub fn tick(v: f64, top: f64) -> String {
    let top = top.abs();
    if v == 0.0 {
        "0".into()
    } else if top >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if top >= 2e4 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else {
        let a = v.abs();
        if a >= 100.0 {
            format!("{v:.0}")
        } else if a >= 1.0 {
            trim(format!("{v:.1}"))
        } else {
            trim(format!("{v:.3}"))
        }
    }
}

/// Ticks of a log axis over `lo..hi`: the decades, with 2 and 5 between them when the axis
/// spans fewer than three decades, and every digit when that still leaves fewer than two.
/// plotters' own log ticks repeat a label at each decade.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let ticks = |steps: &[f64]| {
        let mut ticks = Vec::new();
        let mut decade = 10f64.powf(lo.log10().floor());
        while decade <= hi {
            ticks.extend(
                steps
                    .iter()
                    .map(|m| m * decade)
                    .filter(|t| (lo..=hi).contains(t)),
            );
            decade *= 10.0;
        }
        ticks
    };
    if hi / lo > 1000.0 {
        return ticks(&[1.0]);
    }
    let some = ticks(&[1.0, 2.0, 5.0]);
    if some.len() >= 2 {
        return some;
    }
    ticks(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn keep(series: &[Series], ok: impl Fn((f64, f64)) -> bool) -> Vec<Series> {
    series
        .iter()
        .map(|s| Series {
            points: s.points.iter().copied().filter(|p| ok(*p)).collect(),
            ..s.clone()
        })
        .collect()
}

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |b, v| match b {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// The drawn range of an axis holding `(lo, hi)`.
fn axis((lo, hi): (f64, f64), log: bool, headroom: f64) -> (f64, f64) {
    if log {
        // A log axis needs a little room below too, or the lowest point sits on the frame.
        (lo / 1.5, hi * 1.5 * headroom)
    } else {
        // Rates and latencies read best against zero.
        let lo = lo.min(0.0);
        let hi = if hi > lo { hi * headroom } else { lo + 1.0 };
        (lo, hi)
    }
}

/// Draws the chart; `tops` are the ends of the linear axes, which set their tick units.
fn draw<X, Y>(
    chart: &Chart,
    series: &[Series],
    x: X,
    y: Y,
    tops: (Option<f64>, Option<f64>),
) -> anyhow::Result<String>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut ctx = ChartBuilder::on(&root)
            .caption(chart.title, ("sans-serif", 24))
            .margin(18)
            .x_label_area_size(52)
            .y_label_area_size(76)
            .build_cartesian_2d(x, y)?;
        ctx.configure_mesh()
            .x_desc(chart.x_desc)
            .y_desc(chart.y_desc)
            .x_label_formatter(&|v| tick(*v, tops.0.unwrap_or(*v)))
            .y_label_formatter(&|v| tick(*v, tops.1.unwrap_or(*v)))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;
        let mut legend = false;
        for s in series {
            let line = s.color.stroke_width(2);
            match s.line {
                Line::None => {}
                Line::Solid => {
                    ctx.draw_series(LineSeries::new(s.points.iter().copied(), line))?;
                }
                Line::Dashed => {
                    ctx.draw_series(DashedLineSeries::new(s.points.iter().copied(), 8, 5, line))?;
                }
            }
            match s.marker {
                Marker::None => {}
                Marker::Dot => {
                    ctx.draw_series(
                        s.points
                            .iter()
                            .map(|&p| Circle::new(p, 3, s.color.filled())),
                    )?;
                }
                Marker::Cross => {
                    ctx.draw_series(s.points.iter().map(|&p| Cross::new(p, 5, line)))?;
                }
            }
            if let Some(label) = &s.label {
                // An empty series carries the legend entry, so a legend-only series needs
                // no points and a drawn one is not drawn twice.
                let (color, style, marker) = (s.color, s.line, s.marker);
                ctx.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                    .label(label)
                    .legend(move |c| legend_icon(c, color, style, marker));
                legend = true;
            }
        }
        if legend {
            ctx.configure_series_labels()
                .position(chart.legend.clone())
                .label_font(("sans-serif", 15))
                .legend_area_size(36)
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK.mix(0.4))
                .draw()?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// The legend's sample of a series: 28 px of its line (solid, or three dashes) with its mark
/// in the middle. Parts a series does not have are drawn transparent, which the SVG backend
/// leaves out.
fn legend_icon<'a, DB: DrawingBackend + 'a>(
    at: (i32, i32),
    color: RGBColor,
    line: Line,
    marker: Marker,
) -> impl IntoDynElement<'a, DB, (i32, i32)> {
    let shown = |on: bool| {
        if on {
            color.stroke_width(2)
        } else {
            TRANSPARENT.stroke_width(2)
        }
    };
    let (dash, gap) = (shown(line != Line::None), shown(line == Line::Solid));
    let dot = if marker == Marker::Dot {
        color.filled()
    } else {
        TRANSPARENT.filled()
    };
    let segment = |from: i32, to: i32, style| PathElement::new(vec![(from, 0), (to, 0)], style);
    EmptyElement::at(at)
        + segment(0, 7, dash)
        + segment(7, 10, gap)
        + segment(10, 18, dash)
        + segment(18, 21, gap)
        + segment(21, 28, dash)
        + Circle::new((14, 0), 3, dot)
        + Cross::new((14, 0), 5, shown(marker == Marker::Cross))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Whether `svg` has a `<text>` element reading exactly `text`.
    pub(crate) fn has_text(svg: &str, text: &str) -> bool {
        svg.contains(&format!(">\n{text}\n</text>"))
    }

    fn series(points: Vec<(f64, f64)>) -> Series {
        Series {
            label: Some("s".into()),
            color: BLUE,
            line: Line::Solid,
            marker: Marker::Dot,
            points,
        }
    }

    fn chart(y_scale: Scale) -> Chart<'static> {
        Chart {
            title: "T µs",
            x_desc: "x (msg/s)",
            y_desc: "y (µs)",
            x_scale: Scale::Linear,
            y_scale,
            legend: SeriesLabelPosition::UpperLeft,
        }
    }

    #[test]
    fn auto_scale_goes_log_beyond_two_decades() {
        assert!(!is_log(Scale::Auto, [1.0, 100.0].into_iter()));
        assert!(is_log(Scale::Auto, [0.0, 1.0, 100.1].into_iter()));
        assert!(!is_log(Scale::Auto, std::iter::empty()));
    }

    #[test]
    fn ticks_are_short_and_alike_on_one_axis() {
        assert_eq!(tick(250_000.0, 300_000.0), "250k");
        assert_eq!(tick(12_500.0, 30_000.0), "12.5k");
        assert_eq!(tick(0.0, 30_000.0), "0");
        assert_eq!(tick(1_500_000.0, 2e6), "1.5M");
        assert_eq!(tick(500_000.0, 2e6), "0.5M");
        assert_eq!(tick(10_000.0, 11_000.0), "10000");
        assert_eq!(tick(2.5, 10.0), "2.5");
        assert_eq!(tick(0.25, 10.0), "0.25");
        assert_eq!(tick(0.0, 10.0), "0");
    }

    #[test]
    fn log_ticks_fill_short_axes_and_thin_long_ones() {
        assert_eq!(log_ticks(6.0, 150.0), [10.0, 20.0, 50.0, 100.0]);
        assert_eq!(log_ticks(6.0, 15_000.0), [10.0, 100.0, 1000.0, 10_000.0]);
        assert_eq!(log_ticks(66.0, 156.0), [70.0, 80.0, 90.0, 100.0]);
    }

    #[test]
    fn nothing_drawable_is_no_chart() {
        let empty = [series(vec![(f64::NAN, 1.0), (1.0, f64::INFINITY)])];
        assert!(render(&chart(Scale::Linear), &empty).unwrap().is_none());
        assert!(render(&chart(Scale::Log), &[series(vec![(1.0, 0.0)])])
            .unwrap()
            .is_none());
        let legend_only = Series::legend_only("p99", BLACK, Line::Dashed, Marker::None);
        assert!(render(&chart(Scale::Linear), &[legend_only])
            .unwrap()
            .is_none());
    }

    #[test]
    fn draws_text_lines_and_legend() {
        let s = series(vec![(1.0, 10.0), (2.0, f64::NAN), (3.0, 5000.0)]);
        let svg = render(&chart(Scale::Auto), &[s]).unwrap().unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(has_text(&svg, "T µs"));
        assert!(has_text(&svg, "y (µs)"));
        assert!(svg.contains("<polyline"));
        assert!(svg.contains("<circle"));
        // Log axis ticks at the decades.
        assert!(has_text(&svg, "1000"));
    }
}
