import CustosScan
import Foundation
import Testing

@Suite struct DetectorTests {
    func detect(_ log: String) throws -> [Finding] {
        let m = try makeMatcher([], detectors: true)
        return m.scan(Array(log.utf8))
    }

    // Obviously fake but format-valid examples (AWS's documented example key, jwt.io's example).
    static let positives: [(String, String)] = [
        ("aws-access-key-id", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE"),
        ("github-token", "remote: https://x-access-token:ghp_FAKE0123456789abcdefghijKLMNOPqrstUV@github.com"),
        ("github-fine-grained-token", "GH=github_pat_11FAKE0000aBcDeFgHiJkLm_NoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ01234"),
        ("stripe-key", "Stripe.api_key = sk_test_4eC39HqLyjWDarjtT1zdp7dc"),
        ("slack-token", "SLACK=xoxb-123456789012-1234567890123-FAKEfakeFAKEfakeFAKEfake"),
        ("slack-webhook", "curl -X POST https://hooks.slack.com/services/T00000000/B00000000/fAkE9xQ2vLm8pRz4TbW7yNq1"),
        ("jwt", "Authorization: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
        ("secret-assignment", "DB_PASSWORD=Xk9#mQ2vLp8!Rz4T"),
        ("secret-assignment", "  \"client_secret\": \"9fQ2vLm8pRz4TbW7yNq1\","),
        ("secret-assignment", "Authorization: Bearer 8Hq2LmZ0pV7xK4nR1tY9"),
    ]

    @Test(arguments: positives)
    func positive(_ name: String, _ line: String) throws {
        let f = try detect("2024-05-10T17:46:49.0654321Z \(line)\nnext line\n")
        #expect(f.map(\.secretName) == [name], "\(line)")
        #expect(f.first?.detector == name)
        #expect(f.first?.encoding == "detector")
        #expect(f.first?.fingerprint.hasPrefix("hmac-sha256:") == true)
    }

    @Test func privateKeyBlockOverLines() throws {
        var rng = SplitMix(seed: 9)
        let body = wrap(base64((0..<600).map { _ in UInt8(truncatingIfNeeded: rng.next()) }), 64)
        let log = "writing key\n-----BEGIN RSA PRIVATE KEY-----\n\(body)\n-----END RSA PRIVATE KEY-----\ndone\n"
        let f = try detect(log)
        #expect(f.map(\.secretName) == ["private-key"])
        #expect(f.first?.splitLines == true)
        #expect(f.first?.line == 2)
    }

    static let negatives: [String] = [
        "key AKIAAAAAAAAAAAAAAAAA",                             // no entropy
        "key AKIAIOSFODNN7EXAMPL",                              // 19 characters
        "xAKIAIOSFODNN7EXAMPLE",                                // inside a word
        "ghp_short123",
        "sk_live_short",
        "xoxb-1",
        "password=${{ secrets.DB_PASSWORD }}",
        "password: ********",
        "password=$DB_PASSWORD",
        "Tests passed: 12, failed: 0",
        "token: aaaaaaaaaaaaaaaa",
        "-----BEGIN PRIVATE KEY-----\n<redacted>\n-----END PRIVATE KEY-----",
        "eyJhbGciOiJIUzI1NiJ9 alone",
        "Begin compiling token.swift, secret.swift",
        "https://github.com/org/repo/actions/runs/123",
    ]

    @Test(arguments: negatives)
    func negative(_ line: String) throws {
        #expect(try detect(line + "\n").isEmpty, "\(line)")
    }

    @Test func detectorsYieldToKnownSecrets() throws {
        var s = [ScanSecret(name: "DB_PASSWORD", value: Array("Xk9#mQ2vLp8!Rz4T".utf8))]
        let m = try SecretMatcher(secrets: &s, key: testKey, detectors: true)
        let f = m.scan(Array("DB_PASSWORD=Xk9#mQ2vLp8!Rz4T\n".utf8))
        #expect(f.map(\.secretName) == ["DB_PASSWORD"])
        #expect(f.first?.detector == nil)
    }

    @Test func valueIsNotCarriedAcrossLines() throws {
        // The assignment's value stops at the end of the line (lines are joined for secrets).
        #expect(try detect("password=\nXk9mQ2vLp8Rz4TbW\n").isEmpty)
    }
}
