//! CONTRACT STUB
#![allow(missing_docs, unused)]
use std::net::IpAddr;
pub type FrameId = u64;
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReasmError { Timeout, Evicted, Overlap, TooManyFragments, TooBig, TinyFragment }
impl ReasmError { pub const ALL: &'static [ReasmError] = &[ReasmError::Timeout]; pub fn name(&self) -> &'static str { todo!() } }
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
pub struct ReasmLimits { pub max_datagrams: usize }
impl Default for ReasmLimits { fn default() -> Self { todo!() } }
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragKey { pub src: IpAddr, pub dst: IpAddr, pub id: u32, pub proto: u8 }
pub enum Pushed<'r> { Incomplete, Complete { datagram: &'r [u8], frames: &'r [FrameId] }, Failed { reason: ReasmError, frames: &'r [FrameId] } }
pub struct Reassembler;
impl Reassembler {
    pub fn new(l: ReasmLimits) -> Self { todo!() }
    pub fn push(&mut self, now_ns: u64, key: FragKey, offset: u32, more: bool, data: &[u8], frame: FrameId, evicted: &mut Vec<(FrameId, ReasmError)>) -> Pushed<'_> { todo!() }
    pub fn expire(&mut self, now_ns: u64, out: &mut Vec<(FrameId, ReasmError)>) { todo!() }
    pub fn datagrams(&self) -> usize { todo!() }
    pub fn bytes(&self) -> usize { todo!() }
}
