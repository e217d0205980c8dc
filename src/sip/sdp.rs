//! Zero-copy SDP body parser (RFC 8866, formerly RFC 4566).
//!
//! [`Sdp::parse`] validates the line structure and the fields a firewall acts on (`v=`, `o=`,
//! `c=`, `m=`, `a=` names); the accessors then walk the body lazily without allocating.
//!
//! Deliberate leniencies: LF-only line endings are accepted next to CRLF, the last line may
//! lack its terminator, `s=` may be empty, `t=` is not required, and type letters are not
//! restricted to the ones RFC 8866 defines.

use memchr::memchr;

/// Why an SDP body was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpError {
    /// Zero-length body.
    Empty,
    /// A line that is not `x=value`, contains NUL or a stray CR, or is out of order.
    BadLine,
    /// The first line is not `v=`.
    MissingVersion,
    /// `v=` is not `0`.
    BadVersion,
    /// The second line is not a well-formed `o=`.
    BadOrigin,
    /// Malformed `c=` line.
    BadConnection,
    /// Malformed `m=` line.
    BadMedia,
}

impl SdpError {
    /// Stable snake_case name for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            SdpError::Empty => "empty",
            SdpError::BadLine => "bad_line",
            SdpError::MissingVersion => "missing_version",
            SdpError::BadVersion => "bad_version",
            SdpError::BadOrigin => "bad_origin",
            SdpError::BadConnection => "bad_connection",
            SdpError::BadMedia => "bad_media",
        }
    }
}

impl core::fmt::Display for SdpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// RFC 8866:
/// ```text
/// token       =  1*(token-char)
/// token-char  =  ALPHA / DIGIT / "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "."
///             /  "^" / "_" / "`" / "{" / "|" / "}" / "~"
/// ```
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0usize;
    while c < 256 {
        t[c] = (c as u8).is_ascii_alphanumeric();
        c += 1;
    }
    let extra = b"!#$%&'*+-.^_`{|}~";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
};

/// Whether `s` is a non-empty RFC 8866 `token`.
fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&c| TOKEN[usize::from(c)])
}

/// Whether `s` is `1*DIGIT`.
fn is_digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

/// `1*DIGIT` bounded to `u16`.
fn parse_u16(s: &[u8]) -> Option<u16> {
    if !is_digits(s) {
        return None;
    }
    s.iter().try_fold(0u16, |v, &c| {
        v.checked_mul(10)?.checked_add(u16::from(c - b'0'))
    })
}

/// Splits `s` on single spaces into exactly `N` non-empty fields.
fn fields<const N: usize>(s: &[u8]) -> Option<[&[u8]; N]> {
    let mut out: [&[u8]; N] = [&[]; N];
    let mut parts = s.split(|&c| c == b' ');
    for slot in out.iter_mut() {
        let part = parts.next()?;
        if part.is_empty() {
            return None;
        }
        *slot = part;
    }
    parts.next().is_none().then_some(out)
}

/// One physical line of a body, terminator stripped.
#[derive(Clone, Copy)]
struct RawLine<'a> {
    /// Whole line without its terminator.
    text: &'a [u8],
    /// Offset of this line in the body.
    start: usize,
}

impl<'a> RawLine<'a> {
    /// Type letter (0 for an empty line).
    fn kind(&self) -> u8 {
        self.text.first().copied().unwrap_or(0)
    }

    /// Text after `x=` (empty for lines shorter than that).
    fn value(&self) -> &'a [u8] {
        self.text
            .get(2..)
            .unwrap_or_else(|| self.text.get(self.text.len()..).unwrap_or_default())
    }
}

/// Splits a body into lines on LF, dropping one trailing CR per line.
#[derive(Clone)]
struct RawLines<'a> {
    body: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for RawLines<'a> {
    type Item = RawLine<'a>;

    fn next(&mut self) -> Option<RawLine<'a>> {
        let rest = self.body.get(self.pos..).filter(|r| !r.is_empty())?;
        let start = self.pos;
        let (line, next) = match memchr(b'\n', rest) {
            Some(i) => (rest.get(..i).unwrap_or(rest), start + i + 1),
            None => (rest, self.body.len()),
        };
        self.pos = next;
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        Some(RawLine { text, start })
    }
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// `username` (`-` when none).
    pub username: &'a [u8],
    /// `sess-id` digits.
    pub sess_id: &'a [u8],
    /// `sess-version` digits.
    pub sess_version: &'a [u8],
    /// `nettype` (`IN`).
    pub nettype: &'a [u8],
    /// `addrtype` (`IP4` / `IP6`).
    pub addrtype: &'a [u8],
    /// `unicast-address`.
    pub addr: &'a [u8],
}

impl<'a> Origin<'a> {
    /// Parses the value of an `o=` line.
    fn parse(v: &'a [u8]) -> Option<Origin<'a>> {
        let [username, sess_id, sess_version, nettype, addrtype, addr] = fields::<6>(v)?;
        let ok = is_digits(sess_id)
            && is_digits(sess_version)
            && is_token(nettype)
            && is_token(addrtype);
        ok.then_some(Origin {
            username,
            sess_id,
            sess_version,
            nettype,
            addrtype,
            addr,
        })
    }
}

/// `c=<nettype> <addrtype> <connection-address>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection<'a> {
    /// `nettype` (`IN`).
    pub nettype: &'a [u8],
    /// `addrtype` (`IP4` / `IP6`).
    pub addrtype: &'a [u8],
    /// `connection-address`, including any `/ttl/count` suffix.
    pub addr: &'a [u8],
}

impl<'a> Connection<'a> {
    /// Parses the value of a `c=` line.
    fn parse(v: &'a [u8]) -> Option<Connection<'a>> {
        let [nettype, addrtype, addr] = fields::<3>(v)?;
        (is_token(nettype) && is_token(addrtype)).then_some(Connection {
            nettype,
            addrtype,
            addr,
        })
    }
}

/// One media description: its `m=` line and the lines up to the next `m=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Media<'a> {
    /// `media` (`audio`, `video`, ...).
    pub media: &'a [u8],
    /// Transport port.
    pub port: u16,
    /// `/<number of ports>` suffix.
    pub num_ports: Option<u16>,
    /// `proto` (`RTP/AVP`, `UDP/TLS/RTP/SAVPF`, ...).
    pub proto: &'a [u8],
    /// Space-separated `fmt` list, raw.
    pub fmts: &'a [u8],
    /// Lines after the `m=` line, up to the next `m=` or the end of the body.
    section: &'a [u8],
}

impl<'a> Media<'a> {
    /// Parses the value of an `m=` line.
    ///
    /// ```text
    /// media-field  =  %s"m" "=" media SP port ["/" integer] SP proto 1*(SP fmt) CRLF
    /// proto        =  token *("/" token)
    /// fmt          =  token
    /// ```
    fn parse(v: &'a [u8], section: &'a [u8]) -> Option<Media<'a>> {
        let mut parts = v.splitn(4, |&c| c == b' ');
        let media = parts.next().filter(|m| is_token(m))?;
        let port_txt = parts.next()?;
        let proto = parts.next()?;
        let fmts = parts.next()?;
        let (port, num_ports) = match memchr(b'/', port_txt) {
            Some(i) => {
                let (p, n) = port_txt.split_at_checked(i)?;
                let n = n.get(1..)?;
                // integer = POS-DIGIT *DIGIT
                if n.first() == Some(&b'0') {
                    return None;
                }
                (parse_u16(p)?, Some(parse_u16(n)?))
            }
            None => (parse_u16(port_txt)?, None),
        };
        if !proto.split(|&c| c == b'/').all(is_token) {
            return None;
        }
        if !fmts.split(|&c| c == b' ').all(is_token) {
            return None;
        }
        Some(Media {
            media,
            port,
            num_ports,
            proto,
            fmts,
            section,
        })
    }

    /// Media-level `c=` line, if any (the session-level one applies otherwise).
    pub fn connection(&self) -> Option<Connection<'a>> {
        RawLines {
            body: self.section,
            pos: 0,
        }
        .find(|l| l.kind() == b'c')
        .and_then(|l| Connection::parse(l.value()))
    }

    /// Media-level `a=` lines as `(name, value)`.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            lines: RawLines {
                body: self.section,
                pos: 0,
            },
        }
    }
}

/// Splits an attribute value at the first `:`.
fn split_attr(v: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr(b':', v).and_then(|i| v.split_at_checked(i)) {
        Some((name, rest)) => (name, Some(rest.get(1..).unwrap_or(rest))),
        None => (v, None),
    }
}

/// Iterator over `a=` lines as `(name, value)`; ends at the first `m=` line.
#[derive(Clone)]
pub struct Attributes<'a> {
    lines: RawLines<'a>,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        for line in self.lines.by_ref() {
            match line.kind() {
                b'a' => return Some(split_attr(line.value())),
                b'm' => break,
                _ => {}
            }
        }
        self.lines.pos = self.lines.body.len();
        None
    }
}

/// Iterator over `(type, value)` for every line of a body.
#[derive(Clone)]
pub struct Lines<'a> {
    lines: RawLines<'a>,
}

impl<'a> Iterator for Lines<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        self.lines.next().map(|l| (l.kind(), l.value()))
    }
}

/// Iterator over the media descriptions of a body.
#[derive(Clone)]
pub struct MediaIter<'a> {
    lines: RawLines<'a>,
}

impl<'a> Iterator for MediaIter<'a> {
    type Item = Media<'a>;

    fn next(&mut self) -> Option<Media<'a>> {
        let body = self.lines.body;
        while let Some(line) = self.lines.next() {
            if line.kind() != b'm' {
                continue;
            }
            let section_start = self.lines.pos;
            let mut ahead = self.lines.clone();
            let section_end = ahead
                .find(|l| l.kind() == b'm')
                .map_or(body.len(), |l| l.start);
            self.lines.pos = section_end;
            let section = body
                .get(section_start..section_end)
                .unwrap_or_else(|| body.get(body.len()..).unwrap_or_default());
            // Unparseable m= lines only occur in bodies that skipped `Sdp::parse`.
            if let Some(m) = Media::parse(line.value(), section) {
                return Some(m);
            }
        }
        None
    }
}

/// A validated SDP body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sdp<'a> {
    /// The raw body.
    pub body: &'a [u8],
}

impl<'a> Sdp<'a> {
    /// Validates `body` as an SDP session description.
    pub fn parse(body: &'a [u8]) -> Result<Sdp<'a>, SdpError> {
        if body.is_empty() {
            return Err(SdpError::Empty);
        }
        let mut count = 0usize;
        for line in (RawLines { body, pos: 0 }) {
            let well_formed = line.text.len() >= 2
                && line.text.get(1) == Some(&b'=')
                && line.kind().is_ascii_lowercase();
            let value = line.value();
            // byte-string excludes NUL, CR and LF; LF already split the lines.
            let clean = memchr(0, value).is_none() && memchr(b'\r', value).is_none();
            match count {
                0 if !well_formed || line.kind() != b'v' => return Err(SdpError::MissingVersion),
                0 if value != b"0" => return Err(SdpError::BadVersion),
                1 if !well_formed || line.kind() != b'o' || !clean => {
                    return Err(SdpError::BadOrigin)
                }
                1 if Origin::parse(value).is_none() => return Err(SdpError::BadOrigin),
                2 if !well_formed || line.kind() != b's' || !clean => {
                    return Err(SdpError::BadLine)
                }
                0..=2 => {}
                _ if !well_formed || !clean => return Err(SdpError::BadLine),
                _ => match line.kind() {
                    b'v' | b'o' | b's' => return Err(SdpError::BadLine),
                    b'c' if Connection::parse(value).is_none() => {
                        return Err(SdpError::BadConnection)
                    }
                    b'm' if Media::parse(value, value).is_none() => return Err(SdpError::BadMedia),
                    b'a' if !is_token(split_attr(value).0) => return Err(SdpError::BadLine),
                    _ => {}
                },
            }
            count += 1;
        }
        match count {
            0 => Err(SdpError::Empty),
            1 => Err(SdpError::BadOrigin),
            2 => Err(SdpError::BadLine),
            _ => Ok(Sdp { body }),
        }
    }

    fn raw_lines(&self) -> RawLines<'a> {
        RawLines {
            body: self.body,
            pos: 0,
        }
    }

    /// Session-level lines (before the first `m=`).
    fn session_lines(&self) -> impl Iterator<Item = RawLine<'a>> {
        self.raw_lines().take_while(|l| l.kind() != b'm')
    }

    /// Every line as `(type letter, value)`.
    pub fn lines(&self) -> Lines<'a> {
        Lines {
            lines: self.raw_lines(),
        }
    }

    /// Value of `v=`.
    pub fn version(&self) -> Option<&'a [u8]> {
        self.session_lines()
            .find(|l| l.kind() == b'v')
            .map(|l| l.value())
    }

    /// The `o=` line.
    pub fn origin(&self) -> Option<Origin<'a>> {
        self.session_lines()
            .find(|l| l.kind() == b'o')
            .and_then(|l| Origin::parse(l.value()))
    }

    /// Value of `s=`.
    pub fn session_name(&self) -> Option<&'a [u8]> {
        self.session_lines()
            .find(|l| l.kind() == b's')
            .map(|l| l.value())
    }

    /// Session-level `c=` line.
    pub fn connection(&self) -> Option<Connection<'a>> {
        self.session_lines()
            .find(|l| l.kind() == b'c')
            .and_then(|l| Connection::parse(l.value()))
    }

    /// Media descriptions in order.
    pub fn media(&self) -> MediaIter<'a> {
        MediaIter {
            lines: self.raw_lines(),
        }
    }

    /// Session-level `a=` lines as `(name, value)`.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            lines: self.raw_lines(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OFFER: &[u8] = b"v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
a=group:BUNDLE audio video\r\n\
a=ice-lite\r\n\
m=audio 49170 RTP/AVP 0 8 97\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=sendrecv\r\n\
m=video 51372/2 RTP/AVP 31 32\r\n\
c=IN IP6 2001:db8::2\r\n\
a=rtpmap:31 H261/90000\r\n";

    fn err(b: &[u8]) -> SdpError {
        match Sdp::parse(b) {
            Ok(_) => panic!("{:?} accepted", String::from_utf8_lossy(b)),
            Err(e) => e,
        }
    }

    #[test]
    fn offer() {
        let sdp = Sdp::parse(OFFER).unwrap();
        assert_eq!(sdp.version(), Some(&b"0"[..]));
        assert_eq!(sdp.session_name(), Some(&b"-"[..]));
        let o = sdp.origin().unwrap();
        assert_eq!(o.username, b"alice");
        assert_eq!(o.sess_id, b"2890844526");
        assert_eq!(o.sess_version, b"2890844526");
        assert_eq!((o.nettype, o.addrtype), (&b"IN"[..], &b"IP4"[..]));
        assert_eq!(o.addr, b"atlanta.example.com");
        let c = sdp.connection().unwrap();
        assert_eq!(
            (c.nettype, c.addrtype, c.addr),
            (&b"IN"[..], &b"IP4"[..], &b"192.0.2.101"[..])
        );
        let attrs: Vec<_> = sdp.attributes().collect();
        assert_eq!(
            attrs,
            vec![
                (&b"group"[..], Some(&b"BUNDLE audio video"[..])),
                (&b"ice-lite"[..], None)
            ]
        );
        assert_eq!(sdp.lines().count(), 14);
        assert_eq!(sdp.lines().nth(4), Some((b't', &b"0 0"[..])));

        let media: Vec<_> = sdp.media().collect();
        assert_eq!(media.len(), 2);
        let a = &media[0];
        assert_eq!((a.media, a.port, a.num_ports), (&b"audio"[..], 49170, None));
        assert_eq!(a.proto, b"RTP/AVP");
        assert_eq!(a.fmts, b"0 8 97");
        assert_eq!(a.connection(), None);
        let names: Vec<_> = a.attributes().map(|(n, _)| n).collect();
        assert_eq!(names, vec![&b"rtpmap"[..], b"rtpmap", b"sendrecv"]);
        let v = &media[1];
        assert_eq!(
            (v.media, v.port, v.num_ports),
            (&b"video"[..], 51372, Some(2))
        );
        assert_eq!(v.fmts, b"31 32");
        assert_eq!(v.connection().unwrap().addr, b"2001:db8::2");
        assert_eq!(
            v.attributes().collect::<Vec<_>>(),
            vec![(&b"rtpmap"[..], Some(&b"31 H261/90000"[..]))]
        );
    }

    #[test]
    fn lf_endings_and_missing_final_newline() {
        let body = b"v=0\no=- 1 1 IN IP4 h\ns=\nt=0 0\nm=audio 0 RTP/AVP 0";
        let sdp = Sdp::parse(body).unwrap();
        assert_eq!(sdp.session_name(), Some(&b""[..]));
        let m = sdp.media().next().unwrap();
        assert_eq!(m.port, 0);
        assert_eq!(m.fmts, b"0");
        assert_eq!(sdp.connection(), None);
    }

    #[test]
    fn malformed() {
        assert_eq!(err(b""), SdpError::Empty);
        assert_eq!(
            err(b"o=- 1 1 IN IP4 h\r\ns=-\r\n"),
            SdpError::MissingVersion
        );
        assert_eq!(
            err(b"V=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\n"),
            SdpError::MissingVersion
        );
        assert_eq!(
            err(b"v=1\r\no=- 1 1 IN IP4 h\r\ns=-\r\n"),
            SdpError::BadVersion
        );
        assert_eq!(err(b"v=0\r\n"), SdpError::BadOrigin);
        assert_eq!(err(b"v=0\r\ns=-\r\n"), SdpError::BadOrigin);
        assert_eq!(
            err(b"v=0\r\no=- 1 1 IN IP4\r\ns=-\r\n"),
            SdpError::BadOrigin
        );
        assert_eq!(
            err(b"v=0\r\no=- x 1 IN IP4 h\r\ns=-\r\n"),
            SdpError::BadOrigin
        );
        assert_eq!(
            err(b"v=0\r\no=-  1 1 IN IP4 h\r\ns=-\r\n"),
            SdpError::BadOrigin
        );
        assert_eq!(
            err(b"v=0\r\no=- 1 1 IN IP4 h extra\r\ns=-\r\n"),
            SdpError::BadOrigin
        );
        assert_eq!(err(b"v=0\r\no=- 1 1 IN IP4 h\r\n"), SdpError::BadLine);
        assert_eq!(
            err(b"v=0\r\no=- 1 1 IN IP4 h\r\nt=0 0\r\n"),
            SdpError::BadLine
        );
        const HEAD: &str = "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\n";
        let with = |tail: &str| err(format!("{HEAD}{tail}").as_bytes());
        assert_eq!(with("c=IN IP4\r\n"), SdpError::BadConnection);
        assert_eq!(with("c=IN IP4 a b\r\n"), SdpError::BadConnection);
        assert_eq!(with("m=audio 99999 RTP/AVP 0\r\n"), SdpError::BadMedia);
        assert_eq!(with("m=audio x RTP/AVP 0\r\n"), SdpError::BadMedia);
        assert_eq!(with("m=audio 49170 RTP/AVP\r\n"), SdpError::BadMedia);
        assert_eq!(with("m=audio 49170 RTP/AVP \r\n"), SdpError::BadMedia);
        assert_eq!(with("m=audio 49170/0 RTP/AVP 0\r\n"), SdpError::BadMedia);
        assert_eq!(with("m=audio 49170 RTP//AVP 0\r\n"), SdpError::BadMedia);
        assert_eq!(with("t=0 0\r\n\r\n"), SdpError::BadLine);
        assert_eq!(with("T=0 0\r\n"), SdpError::BadLine);
        assert_eq!(with("t =0 0\r\n"), SdpError::BadLine);
        assert_eq!(with("a=\r\n"), SdpError::BadLine);
        assert_eq!(with("a=x\ry\r\n"), SdpError::BadLine);
        assert_eq!(with("i=a\0b\r\n"), SdpError::BadLine);
        assert_eq!(with("v=0\r\n"), SdpError::BadLine);
        assert_eq!(SdpError::MissingVersion.name(), "missing_version");
    }

    /// Whether `inner` lies within `outer` (empty slices included).
    fn within(outer: &[u8], inner: &[u8]) -> bool {
        let o = outer.as_ptr_range();
        let i = inner.as_ptr_range();
        o.start <= i.start && i.end <= o.end
    }

    /// Walks every accessor; `sdp` need not have been validated.
    fn check_slices(input: &[u8], sdp: Sdp<'_>) {
        let w = |s: &[u8]| assert!(within(input, s));
        sdp.lines().for_each(|(_, v)| w(v));
        sdp.version()
            .into_iter()
            .chain(sdp.session_name())
            .for_each(w);
        if let Some(o) = sdp.origin() {
            [
                o.username,
                o.sess_id,
                o.sess_version,
                o.nettype,
                o.addrtype,
                o.addr,
            ]
            .into_iter()
            .for_each(w);
        }
        if let Some(c) = sdp.connection() {
            [c.nettype, c.addrtype, c.addr].into_iter().for_each(w);
        }
        for (n, v) in sdp.attributes() {
            w(n);
            v.into_iter().for_each(w);
        }
        for m in sdp.media() {
            [m.media, m.proto, m.fmts, m.section]
                .into_iter()
                .for_each(w);
            if let Some(c) = m.connection() {
                [c.nettype, c.addrtype, c.addr].into_iter().for_each(w);
            }
            for (n, v) in m.attributes() {
                w(n);
                v.into_iter().for_each(w);
            }
        }
    }

    fn check(input: &[u8]) {
        if let Ok(sdp) = Sdp::parse(input) {
            check_slices(input, sdp);
        }
        check_slices(input, Sdp { body: input });
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256)) {
            check(&input);
        }

        #[test]
        fn sdp_shaped_input_never_panics(
            tail in "([vocmast]=[a-zA-Z0-9 /:.]{0,16}\r?\n){0,8}"
        ) {
            let body = format!("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\n{tail}");
            check(body.as_bytes());
        }
    }
}
