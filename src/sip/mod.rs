//! CONTRACT STUB — replaced by the real parser. Signatures here are the API the engine uses.
#![allow(missing_docs, unused)]
pub mod uri; pub mod auth; pub mod sdp;

/// Byte range into the message buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span { pub start: u32, pub end: u32 }
impl Span {
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] { &buf[self.start as usize..self.end as usize] }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method { Invite, Ack, Bye, Cancel, Register, Options, Info, Prack, Subscribe, Notify, Update, Message, Refer, Publish, Other }
impl Method {
    pub fn parse(b: &[u8]) -> Method { todo!() }
    pub fn as_str(&self) -> &'static str { todo!() }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason { MissingCallId }
impl Reason {
    pub const ALL: &'static [Reason] = &[Reason::MissingCallId];
    pub fn name(&self) -> &'static str { todo!() }
}
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reasons(pub u64);
impl Reasons {
    pub fn is_empty(&self) -> bool { self.0 == 0 }
    pub fn contains(&self, r: Reason) -> bool { todo!() }
    pub fn iter(&self) -> impl Iterator<Item = Reason> + '_ { std::iter::empty() }
}

#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
pub struct Limits { pub max_message_bytes: usize }
impl Default for Limits { fn default() -> Self { todo!() } }

pub struct Parser;
impl Parser {
    pub fn new(limits: Limits) -> Parser { todo!() }
    pub fn parse<'a>(&'a mut self, buf: &'a [u8]) -> Message<'a> { todo!() }
}
pub struct Message<'a> { buf: &'a [u8] }
pub struct CSeq<'a> { pub number: u32, pub method: Method, pub method_bytes: &'a [u8] }
pub struct Params<'a>(&'a [u8]);
impl<'a> Params<'a> { pub fn get(&self, name: &[u8]) -> Option<Option<&'a [u8]>> { todo!() } }
pub struct Via<'a> { pub transport: &'a [u8], pub host: &'a [u8], pub port: Option<u16>, pub params: Params<'a> }
impl<'a> Via<'a> { pub fn branch(&self) -> Option<&'a [u8]> { todo!() } }
pub struct NameAddr<'a> { pub display: Option<&'a [u8]>, pub uri: &'a [u8], pub params: Params<'a> }
impl<'a> NameAddr<'a> { pub fn tag(&self) -> Option<&'a [u8]> { todo!() } }
impl<'a> Message<'a> {
    pub fn buf(&self) -> &'a [u8] { self.buf }
    pub fn is_request(&self) -> bool { todo!() }
    pub fn method(&self) -> Option<Method> { todo!() }
    pub fn status(&self) -> Option<u16> { todo!() }
    pub fn reasons(&self) -> Reasons { todo!() }
    pub fn call_id(&self) -> Option<&'a [u8]> { todo!() }
    pub fn cseq(&self) -> Option<CSeq<'a>> { todo!() }
    pub fn method_bytes(&self) -> Option<&'a [u8]> { todo!() }
    pub fn top_via(&self) -> Option<Via<'a>> { todo!() }
    pub fn from(&self) -> Option<NameAddr<'a>> { todo!() }
    pub fn to(&self) -> Option<NameAddr<'a>> { todo!() }
}
