//! Content negotiation (docs/contract/rest.md §7): the representation is chosen once, from `Accept`, by the
//! [`Format`] extractor; handlers that answer with a body take it and never look at headers.

use axum::extract::FromRequestParts;
use axum::http::header::ACCEPT;
use axum::http::request::Parts;

use crate::problem::{ApiError, ErrorCode, ProblemFormat};

/// A representation parley can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Hal,
    Json,
    /// XML served as `application/xml`.
    Xml,
    /// XML served as `text/xml`, for clients that asked for that type.
    TextXml,
    Csv,
}

/// Media types in the order they win ties, with the format each gives.
const OFFERED: [(&str, Format); 5] = [
    ("application/hal+json", Format::Hal),
    ("application/json", Format::Json),
    ("application/xml", Format::Xml),
    ("text/xml", Format::TextXml),
    ("text/csv", Format::Csv),
];

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Hal => "application/hal+json",
            Format::Json => "application/json",
            Format::Xml => "application/xml; charset=utf-8",
            Format::TextXml => "text/xml; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }

    /// Picks the best format for an `Accept` header; `None` when nothing offered is acceptable.
    /// No header, or `*/*`, means HAL.
    pub fn choose(accept: Option<&str>) -> Option<Format> {
        best_of(accept, &OFFERED)
    }
}

/// The offer an `Accept` header prefers: the highest quality, then the earliest offer. No
/// header means the first offer.
fn best_of<T: Copy>(accept: Option<&str>, offers: &[(&str, T)]) -> Option<T> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return offers.first().map(|(_, offer)| *offer);
    };
    let ranges = parse_accept(accept);
    let mut best: Option<(f32, usize, T)> = None;
    for (position, (media, offer)) in offers.iter().enumerate() {
        let quality = quality_of(&ranges, media);
        if quality <= 0.0 {
            continue;
        }
        if best.is_none_or(|(q, p, _)| quality > q || (quality == q && position < p)) {
            best = Some((quality, position, *offer));
        }
    }
    best.map(|(_, _, offer)| offer)
}

/// What the OData endpoint answers data as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ODataFormat {
    Json,
    Csv,
}

/// The OData offers, JSON first: it wins ties, and no `Accept` means JSON.
const ODATA_OFFERED: [(&str, ODataFormat); 2] =
    [("application/json", ODataFormat::Json), ("text/csv", ODataFormat::Csv)];

/// The OData format an `Accept` header prefers; 406 when it takes neither (a client asking for
/// Atom or XML only).
pub fn odata_format(accept: Option<&str>) -> Result<ODataFormat, ApiError> {
    best_of(accept, &ODATA_OFFERED).ok_or_else(|| not_acceptable(&ODATA_OFFERED))
}

/// The parameters (after the first `;`, `q` included) of the first `application/json` range of
/// an `Accept` header, where OData clients put `odata.metadata=…`.
pub fn json_parameters(accept: Option<&str>) -> Option<&str> {
    accept?.split(',').find_map(|range| {
        let (media, parameters) = range.split_once(';')?;
        media.trim().eq_ignore_ascii_case("application/json").then_some(parameters)
    })
}

/// What a report can be answered as: any body format, or its chart as an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Body(Format),
    Svg,
    Png,
}

impl ReportFormat {
    pub const SVG: &str = "image/svg+xml";
    pub const PNG: &str = "image/png";

    fn offers() -> Vec<(&'static str, ReportFormat)> {
        let mut offers: Vec<(&str, ReportFormat)> = OFFERED.iter().map(|(m, f)| (*m, ReportFormat::Body(*f))).collect();
        offers.push((Self::SVG, ReportFormat::Svg));
        offers.push((Self::PNG, ReportFormat::Png));
        offers
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ReportFormat {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let accept = parts.headers.get(ACCEPT).and_then(|v| v.to_str().ok());
        let offers = ReportFormat::offers();
        best_of(accept, &offers).ok_or_else(|| not_acceptable(&offers))
    }
}

fn not_acceptable<T>(offers: &[(&str, T)]) -> ApiError {
    ApiError::new(
        ErrorCode::NotAcceptable,
        format!(
            "No acceptable representation. Available: {}.",
            offers.iter().map(|(media, _)| *media).collect::<Vec<_>>().join(", ")
        ),
    )
}

/// One media range of an `Accept` header.
struct Range {
    kind: String,
    subtype: String,
    quality: f32,
}

fn parse_accept(accept: &str) -> Vec<Range> {
    accept
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let media = pieces.next()?.trim().to_ascii_lowercase();
            let (kind, subtype) = media.split_once('/')?;
            let mut quality = 1.0;
            for parameter in pieces {
                if let Some((name, value)) = parameter.split_once('=')
                    && name.trim().eq_ignore_ascii_case("q")
                {
                    quality = value.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q))?;
                }
            }
            Some(Range { kind: kind.trim().to_owned(), subtype: subtype.trim().to_owned(), quality })
        })
        .collect()
}

/// The quality the most specific matching range gives `media`.
fn quality_of(ranges: &[Range], media: &str) -> f32 {
    let (kind, subtype) = media.split_once('/').unwrap_or((media, ""));
    ranges
        .iter()
        .filter_map(|r| {
            let specificity = match (r.kind.as_str(), r.subtype.as_str()) {
                (k, s) if k == kind && s == subtype => 2,
                (k, "*") if k == kind => 1,
                ("*", "*") => 0,
                _ => return None,
            };
            Some((specificity, r.quality))
        })
        .max_by_key(|(specificity, _)| *specificity)
        .map_or(0.0, |(_, quality)| quality)
}

/// The problem format for a request: XML only when XML is acceptable and JSON is not.
pub fn problem_format(accept: Option<&str>) -> ProblemFormat {
    let Some(accept) = accept else { return ProblemFormat::Json };
    let ranges = parse_accept(accept);
    let json = ["application/problem+json", "application/json"].iter().any(|m| quality_of(&ranges, m) > 0.0);
    let xml = ["application/problem+xml", "application/xml", "text/xml"].iter().any(|m| quality_of(&ranges, m) > 0.0);
    if xml && !json { ProblemFormat::Xml } else { ProblemFormat::Json }
}

impl<S: Send + Sync> FromRequestParts<S> for Format {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let accept = parts.headers.get(ACCEPT).and_then(|v| v.to_str().ok());
        Format::choose(accept).ok_or_else(|| not_acceptable(&OFFERED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_hal() {
        assert_eq!(Format::choose(None), Some(Format::Hal));
        assert_eq!(Format::choose(Some("*/*")), Some(Format::Hal));
        assert_eq!(Format::choose(Some("application/*")), Some(Format::Hal));
    }

    #[test]
    fn honours_quality_values() {
        assert_eq!(Format::choose(Some("text/csv;q=0.9, application/xml")), Some(Format::Xml));
        assert_eq!(Format::choose(Some("text/csv, application/json;q=0.5")), Some(Format::Csv));
        assert_eq!(Format::choose(Some("application/json, */*;q=0.1")), Some(Format::Json));
        assert_eq!(Format::choose(Some("*/*, application/hal+json;q=0")), Some(Format::Json));
        assert_eq!(Format::choose(Some("text/*")), Some(Format::TextXml));
        assert_eq!(Format::choose(Some("text/xml")), Some(Format::TextXml));
    }

    #[test]
    fn refuses_what_cannot_be_served() {
        assert_eq!(Format::choose(Some("image/png")), None);
        assert_eq!(Format::choose(Some("application/json;q=0")), None);
    }

    #[test]
    fn problems_are_xml_only_when_json_is_unacceptable() {
        assert_eq!(problem_format(Some("application/xml")), ProblemFormat::Xml);
        assert_eq!(problem_format(Some("application/xml, application/json")), ProblemFormat::Json);
        assert_eq!(problem_format(Some("*/*")), ProblemFormat::Json);
        assert_eq!(problem_format(None), ProblemFormat::Json);
    }
}
