import CustosCore
import Testing

/// Token endpoints accept the token (or accessor) itself as a path segment; it must never be kept.
@Suite struct CredentialPathTests {
    func decode(path: String) -> AccessEvent? {
        let line = #"{"time":"2026-01-01T00:00:00Z","type":"response","auth":{"display_name":"approle","policies":["default"]},"request":{"id":"r1","operation":"update","path":"\#(path)","remote_address":"192.0.2.1"}}"#
        var d = VaultAuditDecoder()
        var out: [DecodeOutput] = []
        d.decode(line: Array(line.utf8), lineNumber: 1, into: &out)
        for o in out { if case .event(let e, _) = o { return e } }
        return nil
    }

    @Test(arguments: ["auth/token/lookup/", "auth/token/revoke/", "auth/token/revoke-orphan/", "auth/token/renew/",
                      "auth/token/lookup-accessor/", "auth/token/revoke-accessor/", "auth/token/renew-accessor/",
                      "sys/wrapping/unwrap/"])
    func tokenInPathIsRedacted(prefix: String) throws {
        let canary = "s.CANARYTOKEN1234567890"
        let e = try #require(decode(path: prefix + canary))
        #expect(e.secret?.path == prefix + "<redacted>")
        let json = String(decoding: e.canonicalJSON(), as: UTF8.self)
        #expect(!json.contains("CANARYTOKEN"))
    }

    @Test func ordinaryPathsAreKept() throws {
        #expect(try #require(decode(path: "auth/token/lookup")).secret?.path == "auth/token/lookup")
        #expect(try #require(decode(path: "auth/token/create/ci-role")).secret?.path == "auth/token/create/ci-role")
        #expect(try #require(decode(path: "secret/data/auth/token/lookup/x")).secret?.path == "secret/data/auth/token/lookup/x")
    }
}
