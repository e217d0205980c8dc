//! CONTRACT STUB — replaced by the real decoder.
#![allow(missing_docs, unused)]
pub mod reasm;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeError { Truncated }
impl DecodeError { pub const ALL: &'static [DecodeError] = &[DecodeError::Truncated]; pub fn name(&self) -> &'static str { todo!() } }

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport { Udp, Tcp, Other(u8) }

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragInfo { pub id: u32, pub offset: u32, pub more: bool }

#[derive(Clone, Debug)]
pub struct Decoded<'a> {
    pub vlans: [u16; 2], pub vlan_count: u8,
    pub src: IpAddr, pub dst: IpAddr,
    pub transport: Transport,
    pub src_port: u16, pub dst_port: u16,
    /// L4 payload (UDP/TCP payload) when not a fragment; the whole IP payload fragment when `frag` is set.
    pub payload: &'a [u8],
    pub frag: Option<FragInfo>,
}

#[derive(Clone, Debug)]
pub enum Frame<'a> { Ip(Decoded<'a>), NotIp { ethertype: u16 } }

pub fn decode(frame: &[u8]) -> Result<Frame<'_>, DecodeError> { todo!() }
/// Parse a UDP header + payload (a reassembled datagram): returns (src_port, dst_port, payload).
pub fn udp_datagram(d: &[u8]) -> Result<(u16, u16, &[u8]), DecodeError> { todo!() }
