//! The XDP program: loaded once per NIC with aya, configured through its maps, attached
//! before any AF_XDP socket exists (libbpf inside `afxdp` then finds our `xsks_map` and puts
//! each socket in it instead of loading its own program), and its link pinned on a bpf
//! filesystem so the kernel keeps bridging while the daemon is gone.
//!
//! Each NIC gets its own instance because `xsks_map` is keyed by queue index and both NICs
//! have a queue 0. The program itself is `bpf/secsip.bpf.c`.

use crate::config::{ApplianceConfig, EngineConfig, Failure, Unclassified as UnclassifiedPolicy, XdpMode};
use crate::wire::classify::{self, Unclassified};
use anyhow::{bail, Context, Result};
use aya::maps::{Array, DevMap, HashMap as BpfHashMap, MapData, PerCpuArray};
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::{Xdp, XdpMode as AyaMode};
use aya::{Ebpf, EbpfLoader, Pod};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The compiled program (build.rs).
static PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/secsip.bpf.o"));

/// Counters of the XDP program, in the order of `enum counter` in the C source.
pub const COUNTERS: [&str; 8] =
    ["rx", "bridged", "to_userspace", "fail_open", "fail_closed", "banned", "redirect_failed", "unclassified_dropped"];

const F_FAIL_OPEN: u32 = 1;
const F_BANS: u32 = 2;
// 4 was "steer fragments": fragments are now always unclassified.
const F_UNCLASSIFIED_DROP: u32 = 8;

/// Key of the `bans` map (`struct ban_key`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct BanKey {
    family: u32,
    addr: [u8; 16],
}

// SAFETY: repr(C), only integers and byte arrays, no padding (4 + 16 bytes, align 4).
unsafe impl Pod for BanKey {}

impl BanKey {
    fn of(ip: IpAddr) -> BanKey {
        let mut addr = [0u8; 16];
        match ip {
            IpAddr::V4(v4) => {
                addr[..4].copy_from_slice(&v4.octets());
                BanKey { family: 4, addr }
            }
            IpAddr::V6(v6) => BanKey { family: 6, addr: v6.octets() },
        }
    }
}

/// `struct settings`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Settings {
    flags: u32,
    /// VLAN tags walked (at most `XDP_MAX_VLAN_TAGS`).
    max_vlan: u8,
    /// Extension / AH headers walked (at most `XDP_MAX_EXT_HEADERS`).
    max_ext: u8,
    _pad: u16,
}

// SAFETY: repr(C), integers only, no padding (4 + 1 + 1 + 2 bytes, align 4).
unsafe impl Pod for Settings {}

impl Settings {
    /// The program never walks deeper than the decoder would accept, so it never bridges a
    /// frame userspace would have refused.
    fn of(app: &ApplianceConfig, eng: &EngineConfig) -> Settings {
        Settings {
            flags: flags(app),
            max_vlan: eng.decode.max_vlan_tags.min(classify::XDP_MAX_VLAN_TAGS),
            max_ext: eng.decode.max_ext_headers.min(classify::XDP_MAX_EXT_HEADERS),
            _pad: 0,
        }
    }
}

/// How the program ended up attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attached {
    /// In the driver.
    Native,
    /// In the generic (skb) path.
    Generic,
}

impl Attached {
    /// `native` or `generic`.
    pub fn name(&self) -> &'static str {
        match self {
            Attached::Native => "native",
            Attached::Generic => "generic",
        }
    }
}

/// The program on one NIC.
pub struct XdpNic {
    /// Interface name.
    pub name: String,
    /// Interface index.
    pub ifindex: u32,
    /// Native or generic.
    pub mode: Attached,
    ebpf: Ebpf,
    pin: PathBuf,
}

/// What happens to the program when the daemon stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnExit {
    /// Leave it pinned: with fail-open it bridges everything, SIP uninspected.
    LeavePinned,
    /// Detach it: the NICs stop bridging.
    Detach,
}

/// The programs on both NICs, `[outside, inside]`.
pub struct XdpPair {
    /// Outside then inside.
    pub nics: [XdpNic; 2],
    bans_max: usize,
    /// Bans currently in the maps (so a sync only writes changes).
    installed: hashbrown::HashMap<IpAddr, u64>,
}

/// Interface index of `name`, or an error that names it.
pub fn ifindex(name: &str) -> Result<u32> {
    let c = std::ffi::CString::new(name).with_context(|| format!("interface name {name:?}"))?;
    // SAFETY: c is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        bail!("no interface named {name:?} in this network namespace");
    }
    Ok(i)
}

/// True when `dir` is on a bpf filesystem (pins elsewhere fail or vanish).
fn on_bpffs(dir: &Path) -> bool {
    const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: statfs writes into a zeroed struct we own; c is NUL-terminated.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut s) == 0 && s.f_type as i64 == BPF_FS_MAGIC
    }
}

fn flags(app: &ApplianceConfig) -> u32 {
    let mut f = 0;
    if app.failure == Failure::FailOpen {
        f |= F_FAIL_OPEN;
    }
    if app.xdp_bans {
        f |= F_BANS;
    }
    if app.unclassified == UnclassifiedPolicy::Drop {
        f |= F_UNCLASSIFIED_DROP;
    }
    f
}

impl XdpNic {
    fn load(name: &str, peer: u32, app: &ApplianceConfig, eng: &EngineConfig, pin_dir: &Path) -> Result<XdpNic> {
        let ifindex = ifindex(name)?;
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("bans", app.xdp_bans_max.max(1))
            .load(PROGRAM)
            .context("loading the XDP program into the kernel (needs CAP_BPF and CAP_NET_ADMIN)")?;
        {
            let mut peers: DevMap<&mut MapData> = DevMap::try_from(ebpf.map_mut("peer").context("map peer")?)?;
            peers.set(0, peer, None, 0).with_context(|| format!("{name}: setting the peer NIC in the devmap"))?;
        }
        {
            let mut ports: Array<&mut MapData, u8> = Array::try_from(ebpf.map_mut("sip_ports").context("map sip_ports")?)?;
            let mut bits = std::collections::BTreeMap::<u16, u8>::new();
            for &p in &eng.sip_udp_ports {
                *bits.entry(p).or_default() |= 1;
            }
            let tls = eng.tls.ports.iter().map(|t| t.port);
            for p in eng.sip_tcp_ports.iter().chain(&eng.sip_ws_ports).copied().chain(tls) {
                *bits.entry(p).or_default() |= 2;
            }
            for (p, b) in bits {
                ports.set(u32::from(p), b, 0)?;
            }
        }
        {
            let mut types: Array<&mut MapData, u8> =
                Array::try_from(ebpf.map_mut("not_sip_ethertypes").context("map not_sip_ethertypes")?)?;
            for &(t, _) in classify::NOT_SIP_ETHERTYPES {
                types.set(u32::from(t), 1, 0)?;
            }
            let mut protos: Array<&mut MapData, u8> =
                Array::try_from(ebpf.map_mut("not_sip_protos").context("map not_sip_protos")?)?;
            for &(p, _) in classify::NOT_SIP_PROTOCOLS {
                protos.set(u32::from(p), 1, 0)?;
            }
        }
        Self::write_settings(&mut ebpf, Settings::of(app, eng))?;

        let prog: &mut Xdp = ebpf.program_mut("secsip_xdp").context("program secsip_xdp")?.try_into()?;
        prog.load().context("the kernel refused the XDP program")?;

        // bpffs refuses names with a dot (reserved for its own files).
        let pin = pin_dir.join(format!("link_{name}"));
        // A link pinned by an earlier run still bridges: replace its program atomically so the
        // wire never goes dark across a restart.
        let previous = PinnedLink::from_pin(&pin).ok();
        let (link_id, mode) = match previous {
            Some(p) => {
                let fd: FdLink = p.unpin().with_context(|| format!("unpinning {}", pin.display()))?;
                let link = aya::programs::xdp::XdpLink::try_from(fd)
                    .with_context(|| format!("{}: pinned object is not an XDP link", pin.display()))?;
                let id = prog.attach_to_link(link).with_context(|| format!("{name}: replacing the pinned XDP program"))?;
                (id, current_mode(ifindex).unwrap_or(Attached::Native))
            }
            None => attach(prog, name, app.xdp_mode)?,
        };
        let link = prog.take_link(link_id)?;
        let fd: FdLink = link.try_into().with_context(|| format!("{name}: XDP attached through netlink, not a link: cannot pin"))?;
        let pinned = fd.pin(&pin).with_context(|| format!("pinning the XDP link at {}", pin.display()))?;
        // The pin holds the link; our handle is not needed (dropping a PinnedLink keeps the pin).
        drop(pinned);
        Ok(XdpNic { name: name.to_string(), ifindex, mode, ebpf, pin })
    }

    fn write_settings(ebpf: &mut Ebpf, s: Settings) -> Result<()> {
        let mut settings: Array<&mut MapData, Settings> = Array::try_from(ebpf.map_mut("settings").context("map settings")?)?;
        settings.set(0, s, 0)?;
        Ok(())
    }

    /// Sums the per-CPU counters, in [`COUNTERS`] order.
    pub fn counters(&self) -> [u64; COUNTERS.len()] {
        self.sum_per_cpu("counters")
    }

    /// Frames the program could not classify, by cause, in [`Unclassified::ALL`] order.
    pub fn unclassified(&self) -> [u64; Unclassified::ALL.len()] {
        self.sum_per_cpu("unclassified")
    }

    fn sum_per_cpu<const N: usize>(&self, name: &str) -> [u64; N] {
        let mut out = [0u64; N];
        let Some(map) = self.ebpf.map(name) else { return out };
        let Ok(arr) = PerCpuArray::<&MapData, u64>::try_from(map) else { return out };
        for (i, o) in out.iter_mut().enumerate() {
            if let Ok(v) = arr.get(&(i as u32), 0) {
                *o = v.iter().sum();
            }
        }
        out
    }
}

fn attach(prog: &mut Xdp, name: &str, mode: XdpMode) -> Result<(aya::programs::xdp::XdpLinkId, Attached)> {
    let native = || prog_attach(name, AyaMode::Driver);
    match mode {
        XdpMode::Native => Ok((prog.attach(name, AyaMode::Driver).with_context(native)?, Attached::Native)),
        XdpMode::Generic => Ok((prog.attach(name, AyaMode::Skb).with_context(|| prog_attach(name, AyaMode::Skb))?, Attached::Generic)),
        XdpMode::Auto => match prog.attach(name, AyaMode::Driver) {
            Ok(id) => Ok((id, Attached::Native)),
            Err(e) => {
                eprintln!("secsip: {name}: native XDP refused ({e}); using generic mode");
                Ok((prog.attach(name, AyaMode::Skb).with_context(|| prog_attach(name, AyaMode::Skb))?, Attached::Generic))
            }
        },
    }
}

fn prog_attach(name: &str, mode: AyaMode) -> String {
    format!("attaching the XDP program to {name} in {mode:?} mode (another XDP program attached? `ip link show {name}`)")
}

/// The mode of the program attached to `ifindex`, from `ip -d link` style netlink query.
/// Only used to report what a replaced pinned link runs in.
fn current_mode(ifindex: u32) -> Option<Attached> {
    let out = std::process::Command::new("ip").args(["-d", "-j", "link", "show"]).output().ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let link = v.as_array()?.iter().find(|l| l["ifindex"].as_u64() == Some(u64::from(ifindex)))?;
    match link["xdp"]["mode"].as_u64()? {
        1 => Some(Attached::Native),
        2 => Some(Attached::Generic),
        _ => None,
    }
}

impl XdpPair {
    /// Loads, configures, attaches and pins the program on both NICs.
    pub fn attach(outside: &str, inside: &str, app: &ApplianceConfig, eng: &EngineConfig) -> Result<XdpPair> {
        let dir = &app.bpffs;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if !on_bpffs(dir) {
            bail!(
                "appliance.bpffs = {}: not on a bpf filesystem, so the XDP links cannot be pinned \
                 (mount one: `mount -t bpf bpf {}`)",
                dir.display(),
                dir.display()
            );
        }
        let (o, i) = (ifindex(outside)?, ifindex(inside)?);
        let out_nic = XdpNic::load(outside, i, app, eng, dir)?;
        let in_nic = XdpNic::load(inside, o, app, eng, dir)?;
        Ok(XdpPair { nics: [out_nic, in_nic], bans_max: app.xdp_bans_max as usize, installed: hashbrown::HashMap::new() })
    }

    /// Rewrites the settings of both programs (a reload changed the failure policy, bans, the
    /// unclassified policy or the decoder's limits).
    pub fn configure(&mut self, app: &ApplianceConfig, eng: &EngineConfig) -> Result<()> {
        for n in &mut self.nics {
            XdpNic::write_settings(&mut n.ebpf, Settings::of(app, eng))?;
        }
        Ok(())
    }

    /// Makes the `bans` maps hold exactly `bans` (address, expiry in CLOCK_MONOTONIC ns), up to
    /// the map size; returns how many are installed. Expired entries are removed here too.
    pub fn sync_bans(&mut self, bans: &[(IpAddr, u64)]) -> usize {
        let want: hashbrown::HashMap<IpAddr, u64> = bans.iter().take(self.bans_max).copied().collect();
        for n in &mut self.nics {
            let Some(map) = n.ebpf.map_mut("bans") else { continue };
            let Ok(mut m) = BpfHashMap::<&mut MapData, BanKey, u64>::try_from(map) else { continue };
            for ip in self.installed.keys() {
                if !want.contains_key(ip) {
                    let _ = m.remove(&BanKey::of(*ip));
                }
            }
            for (ip, until) in &want {
                if self.installed.get(ip) != Some(until) {
                    let _ = m.insert(BanKey::of(*ip), *until, 0);
                }
            }
        }
        self.installed = want;
        self.installed.len()
    }

    /// Stops: leaves the programs pinned (bypass) or detaches them.
    pub fn finish(self, on_exit: OnExit) -> Result<()> {
        if on_exit == OnExit::Detach {
            for n in &self.nics {
                if let Ok(p) = PinnedLink::from_pin(&n.pin) {
                    let fd = p.unpin().with_context(|| format!("unpinning {}", n.pin.display()))?;
                    drop(fd); // the last reference: the kernel detaches the program
                }
            }
        }
        Ok(())
    }
}
