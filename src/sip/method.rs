//! Request methods.

/// A SIP request method. Methods are case-sensitive tokens (RFC 3261 §7.1), so `invite`
/// is an extension method, not `INVITE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `INVITE` (RFC 3261).
    Invite,
    /// `ACK` (RFC 3261).
    Ack,
    /// `BYE` (RFC 3261).
    Bye,
    /// `CANCEL` (RFC 3261).
    Cancel,
    /// `REGISTER` (RFC 3261).
    Register,
    /// `OPTIONS` (RFC 3261).
    Options,
    /// `INFO` (RFC 6086).
    Info,
    /// `PRACK` (RFC 3262).
    Prack,
    /// `SUBSCRIBE` (RFC 6665).
    Subscribe,
    /// `NOTIFY` (RFC 6665).
    Notify,
    /// `UPDATE` (RFC 3311).
    Update,
    /// `MESSAGE` (RFC 3428).
    Message,
    /// `REFER` (RFC 3515).
    Refer,
    /// `PUBLISH` (RFC 3903).
    Publish,
    /// Any other token; see `Message::method_bytes` for the raw bytes.
    Other,
}

impl Method {
    /// Classify a method token, case-sensitively.
    pub fn parse(b: &[u8]) -> Method {
        match b {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"REGISTER" => Method::Register,
            b"OPTIONS" => Method::Options,
            b"INFO" => Method::Info,
            b"PRACK" => Method::Prack,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"UPDATE" => Method::Update,
            b"MESSAGE" => Method::Message,
            b"REFER" => Method::Refer,
            b"PUBLISH" => Method::Publish,
            _ => Method::Other,
        }
    }

    /// The method token (`"INVITE"`), or `"OTHER"` for [`Method::Other`].
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Update => "UPDATE",
            Method::Message => "MESSAGE",
            Method::Refer => "REFER",
            Method::Publish => "PUBLISH",
            Method::Other => "OTHER",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_case_sensitive() {
        assert_eq!(Method::parse(b"INVITE"), Method::Invite);
        assert_eq!(Method::parse(b"invite"), Method::Other);
        assert_eq!(Method::parse(b"FOO"), Method::Other);
        for m in [Method::Invite, Method::Ack, Method::Bye, Method::Cancel, Method::Register,
                  Method::Options, Method::Info, Method::Prack, Method::Subscribe, Method::Notify,
                  Method::Update, Method::Message, Method::Refer, Method::Publish] {
            assert_eq!(Method::parse(m.as_str().as_bytes()), m);
        }
        assert_eq!(Method::Other.as_str(), "OTHER");
    }
}
