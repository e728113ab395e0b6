import CustosScan
import Foundation

let testKey = FingerprintKey(bytes: Array("custos-scan-test-key".utf8))

func makeMatcher(_ secrets: [(String, String)], detectors: Bool = false, limits: ScanLimits = ScanLimits()) throws -> SecretMatcher {
    var s = secrets.map { ScanSecret(name: $0.0, value: Array($0.1.utf8)) }
    return try SecretMatcher(secrets: &s, key: testKey, limits: limits, detectors: detectors)
}

func scan(_ m: SecretMatcher, _ log: String) -> [Finding] { m.scan(Array(log.utf8)) }

func base64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }
func base64(_ b: [UInt8]) -> String { Data(b).base64EncodedString() }
func base64URL(_ b: [UInt8]) -> String {
    base64(b).replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
}
func hex(_ s: String, upper: Bool = false) -> String {
    s.utf8.map { String(format: upper ? "%02X" : "%02x", $0) }.joined()
}
func wrap(_ s: String, _ width: Int) -> String {
    var out: [String] = []
    var rest = Substring(s)
    while !rest.isEmpty { out.append(String(rest.prefix(width))); rest = rest.dropFirst(width) }
    return out.joined(separator: "\n")
}

/// A deterministic generator (tests must not depend on the run).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func randomToken(_ n: Int, _ rng: inout SplitMix) -> String {
    let a = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    return String((0..<n).map { _ in a[Int(rng.next() % UInt64(a.count))] })
}
