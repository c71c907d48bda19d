//! A strict XML 1.0 reader for the XML representations, and their comparison with JSON.

use quick_xml::events::Event;
use serde_json::Value as Json;

/// An element of a parsed XML document.
#[derive(Debug, Clone, PartialEq)]
pub struct XmlElement {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<XmlElement>,
    pub text: String,
}

impl XmlElement {
    /// The only child named `name`.
    pub fn child(&self, name: &str) -> &XmlElement {
        let found: Vec<&XmlElement> = self.children.iter().filter(|c| c.name == name).collect();
        assert_eq!(found.len(), 1, "children named {name} of <{}>", self.name);
        found[0]
    }

    pub fn children_named(&self, name: &str) -> Vec<&XmlElement> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn is_nil(&self) -> bool {
        self.attribute("xsi:nil") == Some("true")
    }
}

/// Whether XML 1.0 allows `c` in a document at all.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
}

/// Parses an XML 1.0 document into its root element, failing on anything not well-formed,
/// including characters XML 1.0 forbids, raw or as character references.
pub fn parse_xml(document: &str) -> XmlElement {
    if let Some(bad) = document.chars().find(|c| !is_xml_char(*c)) {
        panic!("the document holds U+{:04X}, which XML 1.0 forbids", bad as u32);
    }
    let mut reader = quick_xml::Reader::from_str(document);
    let mut stack: Vec<XmlElement> = Vec::new();
    let mut root: Option<XmlElement> = None;
    let open = |start: &quick_xml::events::BytesStart<'_>| XmlElement {
        name: start.name().as_ref().to_owned(),
        attributes: start
            .attributes()
            .map(|a| {
                let a = a.expect("a well-formed attribute");
                (
                    a.key.as_ref().to_owned(),
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0).expect("an attribute value").into_owned(),
                )
            })
            .collect(),
        children: Vec::new(),
        text: String::new(),
    };
    loop {
        let event = reader.read_event().unwrap_or_else(|e| panic!("malformed XML at {}: {e}", reader.error_position()));
        let finished = match event {
            Event::Start(start) => {
                stack.push(open(&start));
                None
            }
            Event::Empty(start) => Some(open(&start)),
            Event::End(_) => Some(stack.pop().expect("an open element")),
            Event::Text(text) => {
                let content = text.xml10_content();
                match stack.last_mut() {
                    Some(element) => element.text.push_str(&content),
                    None => assert!(content.trim().is_empty(), "text outside the root: {content}"),
                }
                None
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().expect("a valid character reference") {
                    Some(c) => {
                        assert!(is_xml_char(c), "the character reference {reference:?} names a forbidden character");
                        c.to_string()
                    }
                    None => quick_xml::escape::resolve_predefined_entity(&reference)
                        .unwrap_or_else(|| panic!("unknown entity {reference:?}"))
                        .to_owned(),
                };
                stack.last_mut().expect("a reference inside an element").text.push_str(&resolved);
                None
            }
            Event::CData(data) => {
                stack.last_mut().expect("CDATA inside an element").text.push_str(&data.xml10_content());
                None
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => None,
        };
        if let Some(element) = finished {
            match stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None => {
                    assert!(root.is_none(), "more than one root element");
                    root = Some(element);
                }
            }
        }
    }
    assert!(stack.is_empty(), "unclosed elements");
    root.expect("a root element")
}

/// The JSON value an XML element of the response stands for, given the JSON value it should
/// equal: the expected value says whether to read a list, a number or a text.
pub fn assert_xml_matches(element: &XmlElement, expected: &Json) {
    let at = &element.name;
    match expected {
        Json::Null => assert!(element.is_nil() && element.children.is_empty() && element.text.is_empty(), "<{at}>"),
        Json::String(text) => assert_eq!(&element.text, text, "<{at}>"),
        Json::Bool(b) => assert_eq!(element.text, b.to_string(), "<{at}>"),
        Json::Number(n) => {
            let parsed: f64 = element.text.parse().unwrap_or_else(|_| panic!("<{at}> holds {:?}", element.text));
            assert_eq!(Some(parsed), n.as_f64(), "<{at}>");
        }
        Json::Array(items) => {
            let children = element.children_named("item");
            assert_eq!(children.len(), element.children.len(), "<{at}> holds only item elements");
            assert_eq!(children.len(), items.len(), "<{at}>");
            for (child, item) in children.iter().zip(items) {
                assert_xml_matches(child, item);
            }
        }
        Json::Object(map) => {
            assert_eq!(element.children.len(), map.len(), "<{at}>: {:?}", element.children);
            for (name, value) in map {
                assert_xml_matches(element.child(name), value);
            }
        }
    }
}
