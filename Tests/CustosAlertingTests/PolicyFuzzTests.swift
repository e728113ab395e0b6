import CustosAlerting
@testable import CustosCore
import Foundation
import Testing

/// Mutated and truncated inputs for the two readers this module adds: the YAML policy
/// loader and the canonical check of non-event trail entries. Errors are fine; crashes,
/// hangs and accepting a corrupted entry are not.
@Suite struct PolicyFuzzTests {
    struct RNG: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func mutate(_ input: [UInt8], _ rng: inout RNG) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + Int(rng.next() % 4)) {
            guard !b.isEmpty else { break }
            let i = Int(rng.next() % UInt64(b.count))
            switch rng.next() % 5 {
            case 0: b[i] ^= UInt8(truncatingIfNeeded: 1 << (rng.next() % 8))
            case 1: b.removeSubrange(i..<min(b.count, i + 1 + Int(rng.next() % 16)))
            case 2: b.insert(contentsOf: [0x7B, 0x5B, 0x22, 0x3A, 0x2C, 0x0A, 0x26, 0x2A][Int(rng.next() % 8)...].prefix(2), at: i)
            case 3: b = Array(b.prefix(i))
            default: b[i] = UInt8(truncatingIfNeeded: rng.next())
            }
        }
        return b
    }

    @Test func mutatedPoliciesLoadOrFailCleanly() throws {
        let text = Array(PolicyTests.good.utf8)
        var rng = RNG(state: 7)
        var refused = 0
        for _ in 0..<1_500 {
            let m = Self.mutate(text, &rng)
            do {
                _ = try PolicyLoader.load(yaml: String(decoding: m, as: UTF8.self), baseDirectory: AlertingFixtures.path)
            } catch {
                refused += 1
                #expect(!error.problems.isEmpty)
                // Problems never quote a notification credential.
                #expect(!error.description.contains("SECRETPART"))
            }
        }
        #expect(refused > 500)
        // Deep nesting and a huge scalar.
        let deep = String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000)
        #expect(throws: ConfigProblems.self) { _ = try PolicyLoader.load(yaml: "networks: " + deep, baseDirectory: "/") }
        let huge = "owners: { a: { name: \"" + String(repeating: "x", count: 500_000) + "\" } }"
        #expect(throws: ConfigProblems.self) { _ = try PolicyLoader.load(yaml: huge, baseDirectory: "/") }
    }

    @Test func everyMutationOfAnAlertEntryIsCaughtOrStillCanonical() throws {
        let p = try Scenario.policy(identities: DetectionTests.everyone)
        let alerts = Scenario.run(p, [Records.at(Records.aliceRead, "2026-11-30T10:00:00Z", ip: "175.16.199.7")])
        let bytes = try #require(alerts.first).canonicalJSON()
        #expect(GenericCanonical.check(bytes).problem == nil)
        var rng = RNG(state: 11)
        for _ in 0..<5_000 {
            let m = Self.mutate(bytes, &rng)
            let r = GenericCanonical.check(m)
            if r.problem == nil {
                // Accepted: then it must really be canonical JSON (parses, and keys sorted).
                #expect((try? JSONSerialization.jsonObject(with: Data(m))) != nil, "accepted non-JSON")
            }
        }
        #expect(GenericCanonical.check([]).problem != nil)
        #expect(GenericCanonical.check(Array((String(repeating: "{\"a\":", count: 100) + "1" + String(repeating: "}", count: 100)).utf8)).problem?.contains("nested") == true)
        #expect(GenericCanonical.check(Array("{\"b\":1,\"a\":2}".utf8)).problem?.contains("order") == true)
        #expect(GenericCanonical.check(Array("{\"a\":null}".utf8)).problem?.contains("null") == true)
        #expect(GenericCanonical.check(Array("{\"a\":[]}".utf8)).problem?.contains("empty array") == true)
        #expect(GenericCanonical.check(Array("{\"a\":01}".utf8)).problem != nil)
        #expect(GenericCanonical.check(Array("{\"a\":\"\\u001F\"}".utf8)).problem != nil)   // upper-case hex
        #expect(GenericCanonical.check(Array("{\"a\":\"\\u001f\"}".utf8)).problem == nil)
    }
}
