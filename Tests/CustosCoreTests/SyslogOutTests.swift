import Foundation
import Testing
@testable import CustosCore

/// RFC 5424 and CEF output for syslog-only SIEMs: header, structured data, escaping, framing.
@Suite struct SyslogOutTests {
    static var event: AccessEvent { OCSFTests.sample }

    @Test func rfc5424HeaderAndStructuredData() {
        let m = SyslogOut.rfc5424(Self.event, hostname: "custos-1")
        // authpriv (10) * 8 + warning (4) for a denial; 6 fraction digits at most.
        #expect(m.hasPrefix("<84>1 2026-11-27T23:18:48.265402Z custos-1 custos - read [custos@32473 id=\"bdf8000c47727435775c54cb0ed79651\" action=\"read\" outcome=\"denied\""), "\(m)")
        #expect(m.contains(" secret=\"secret/data/prod/payments/db\""))
        #expect(m.contains(" ip=\"127.0.0.1\" port=\"36014\""))
        #expect(m.contains(" pipeline_repository=\"octo-org/payments\""))
        #expect(m.hasSuffix("] api_key token-payment-processor read secret/data/prod/payments/db: denied (permission denied)"), "\(m)")
        var ok = Self.event; ok.outcome = .success; ok.reason = nil
        #expect(SyslogOut.rfc5424(ok, hostname: "h").hasPrefix("<86>1 "))
        var leak = Self.event; leak.action = .leak
        #expect(SyslogOut.rfc5424(leak, hostname: "h").hasPrefix("<82>1 "))
    }

    @Test func rfc5424Escaping() {
        #expect(SyslogOut.escapeParamValue(#"a"b\c]d"#) == #"a\"b\\c\]d"#)
        #expect(SyslogOut.escapeParamValue("plain [x] é") == #"plain [x\] é"#)
        var e = Self.event
        e.secret?.path = #"secret/data/we"ird]\path"#
        e.identity.name = "host name with spaces"
        let m = SyslogOut.rfc5424(e, hostname: "bad host\nname")
        #expect(m.contains(#" secret="secret/data/we\"ird\]\\path""#), "\(m)")
        #expect(m.contains(" bad_host_name custos "), "\(m)")
        #expect(SyslogOut.headerField("", max: 10) == "-")
        #expect(SyslogOut.headerField(String(repeating: "x", count: 40), max: 32).count == 32)
        // Times with fewer digits keep them; whole seconds have none.
        #expect(SyslogOut.timestamp(EventTime(rfc3339: "2026-01-02T03:04:05.5Z")!) == "2026-01-02T03:04:05.5Z")
        #expect(SyslogOut.timestamp(EventTime(rfc3339: "2026-01-02T03:04:05Z")!) == "2026-01-02T03:04:05Z")
    }

    @Test func cefHeaderAndExtensionEscaping() {
        #expect(SyslogOut.cefHeader(#"a|b\c"#) == #"a\|b\\c"#)
        #expect(SyslogOut.cefHeader("line\nbreak") == "line break")
        #expect(SyslogOut.cefValue("a=b\\c\nd\re|f") == #"a\=b\\c\nd\re|f"#)
        var e = Self.event
        e.action = Action("ro|tate")
        e.secret?.path = "secret/x=1\\y\nz"
        let c = SyslogOut.cef(e)
        #expect(c.hasPrefix(#"CEF:0|Custos|Custos|1|ro\|tate|secret ro\|tate denied|6|rt=1795821528265 act=ro|tate outcome=failure"#), "\(c)")
        #expect(c.contains(#"cs1Label=secret cs1=secret/x\=1\\y\nz "#), "\(c)")
        #expect(c.contains(" src=127.0.0.1 spt=36014 "))
        #expect(c.contains(" suser=token-payment-processor suid=hmac-sha256:9dfb "))
        #expect(!c.contains("\n"))
        var v6 = Self.event; v6.origin = .init(ip: "2001:db8::1")
        #expect(SyslogOut.cef(v6).contains(" c6a2=2001:db8::1 c6a2Label=sourceIPv6 "))
        #expect(SyslogOut.cefSyslog(Self.event, hostname: "h").hasPrefix("<84>1 2026-11-27T23:18:48.265402Z h custos - read - CEF:0|Custos|"))
    }

    @Test func octetCountingCountsBytes() {
        #expect(SyslogOut.octetCounted("abc") == Array("3 abc".utf8))
        #expect(SyslogOut.octetCounted("é") == Array("2 é".utf8))
    }
}
