import Crypto

/// SHA-256 over a sequence of alerts (each one's canonical JSON and a newline, in order)
/// and an engine's counters: a fingerprint of what detection produced, for checking that a
/// change to the engine leaves its output unchanged (`custos-bench detect-digest`).
public struct AlertDigest {
    var hash = SHA256()
    public private(set) var alerts = 0

    public init() {}

    public mutating func add(_ a: Alert) {
        hash.update(data: a.canonicalJSON())
        hash.update(data: [0x0A])
        alerts += 1
    }

    /// Adds the engine's logged/raised/folded counts per class and its events seen, and
    /// returns the hex digest.
    public mutating func finish(_ engine: DetectionEngine) -> String {
        var text = "events_seen \(engine.eventsSeen)\n"
        for (name, counts) in [("logged", engine.logged), ("raised", engine.raised), ("folded", engine.folded)] {
            for c in AlertClass.allCases.sorted() { text += "\(name) \(c) \(counts[c] ?? 0)\n" }
        }
        hash.update(data: Array(text.utf8))
        return Hex.encode(Array(hash.finalize()))
    }
}
