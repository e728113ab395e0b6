import Testing
@testable import CustosCore

/// The detection engine's identity table (`IdentityTable`): what the detection digest does
/// not exercise (collisions, growth, eviction under the identity bound, copies).
@Suite("IdentityTable")
struct IdentityTableTests {
    /// Marks the record of `key` as seen at `step` if it is new; returns whether it was new.
    @discardableResult
    static func touch(_ t: inout IdentityTable, _ key: String, _ step: Int64) -> Bool {
        let r = t.record(key)
        #expect(r.pointee.key == key)
        if r.pointee.firstSeen == .max { r.pointee.firstSeen = step; return true }
        return false
    }

    @Test func recordsAreTwoAlignedCacheLines() {
        #expect(MemoryLayout<IdentityTable.Record>.stride == 128)
        var t = IdentityTable(limit: 10)
        for k in ["a", "b", "c"] { #expect(Int(bitPattern: t.record(k)) % 128 == 0) }
    }

    /// The record's recent-hours buffer (`DetectionEngine.countRead(_:hour:)` and `settle`)
    /// against the plain array it stands for (`countRead(_:hour:)` over the whole history):
    /// the same count for every read, and after `settle` the same history, over random
    /// walks with repeats, new hours, gaps beyond the four weeks kept, and late reads.
    @Test func recentHoursBufferMatchesThePlainHistory() {
        var rng = SystemRandomNumberGenerator()
        for walk in 0..<300 {
            var t = IdentityTable(limit: 4)
            let r = t.record("id")
            var model: [UInt64] = []
            var hour: Int64 = 490_000 + Int64(walk)
            for step in 0..<400 {
                switch Int.random(in: 0..<100, using: &rng) {
                case 0..<40: break                                                   // same hour
                case 40..<80: hour += Int64.random(in: 1...30, using: &rng)            // a later hour
                case 80..<85: hour += Int64.random(in: 600...2_000, using: &rng)       // a long gap
                default: break
                }
                // Now and then a late read (an hour before the newest).
                let h = Int.random(in: 0..<10, using: &rng) == 0 ? hour - Int64.random(in: 0...900, using: &rng) : hour
                let expected = DetectionEngine.countRead(&model, hour: h)
                let got = DetectionEngine.countRead(r, hour: h)
                #expect(got == expected, "walk \(walk) step \(step) hour \(h)")
                if Int.random(in: 0..<25, using: &rng) == 0 {
                    DetectionEngine.settle(r)
                    #expect(r.pointee.hours == model, "walk \(walk) step \(step)")
                }
                if got != expected { return }
            }
            DetectionEngine.settle(r)
            #expect(r.pointee.hours == model, "walk \(walk)")
        }
    }

    @Test func everyKeyCollidingStillFindsItsOwnRecord() {
        // hashMask 0: every key has hash 0 (one probe chain, same tag), so each lookup
        // compares keys along the chain, through growth too.
        var t = IdentityTable(limit: 100_000)
        t.hashMask = 0
        for i in 0..<2_000 { #expect(Self.touch(&t, "id-\(i)", Int64(i))) }
        #expect(t.count == 2_000)
        for i in stride(from: 1_999, through: 0, by: -1) {
            let r = t.record("id-\(i)")
            #expect(r.pointee.firstSeen == Int64(i))
        }
        #expect(t.count == 2_000)
        // Keys that differ only after the first 8 bytes, and the empty key.
        #expect(Self.touch(&t, "", -1))
        #expect(Self.touch(&t, "id-0\u{0}", -2))
        #expect(t.record("").pointee.firstSeen == -1)
        #expect(t.record("id-0").pointee.firstSeen == 0)
    }

    @Test func keysSharingHashBitsAndTags() {
        // A tiny table with the usual hash: many keys share a home slot and tag.
        var t = IdentityTable(limit: 1_000)
        t.hashMask = 0xFF00_0000_0000_0003   // 4 home slots, tags from the top byte
        for i in 0..<200 { #expect(Self.touch(&t, "k\(i)", Int64(i))) }
        for i in 0..<200 { #expect(t.record("k\(i)").pointee.firstSeen == Int64(i)) }
        #expect(t.count == 200)
    }

    @Test func growsKeepingStateAndLoadAtMostHalf() {
        var t = IdentityTable(limit: 1_000_000)
        #expect(t.capacity == IdentityTable.minimumCapacity)
        var capacities: Set<Int> = []
        for i in 0..<50_000 {
            Self.touch(&t, "identity-\(i)-with-a-longer-key", Int64(i))
            #expect(t.count * 2 <= t.capacity)
            capacities.insert(t.capacity)
        }
        #expect(t.capacity == 131_072)
        #expect(capacities.count > 5)   // grew in steps
        for i in 0..<50_000 { #expect(t.record("identity-\(i)-with-a-longer-key").pointee.firstSeen == Int64(i)) }
        #expect(t.count == 50_000)
    }

    @Test func evictsInTwoGenerations() {
        // limit 100: generations of 50.
        var t = IdentityTable(limit: 100)
        for i in 0..<50 { #expect(Self.touch(&t, "a\(i)", 1)) }
        #expect(t.count == 50 && t.currentCount == 50)
        // The current generation is full: a new key starts a new one (a0..a49 are previous).
        #expect(Self.touch(&t, "b0", 2))
        #expect(t.count == 51 && t.currentCount == 1)
        // A previous-generation key seen again keeps its state and moves to the current one.
        #expect(!Self.touch(&t, "a0", 3))
        #expect(t.record("a0").pointee.firstSeen == 1)
        #expect(t.count == 51 && t.currentCount == 2)
        for i in 1..<49 { #expect(Self.touch(&t, "b\(i)", 2)) }
        #expect(t.count == 99 && t.currentCount == 50)
        // Full again: a1..a49 (previous, not seen since) are forgotten.
        #expect(Self.touch(&t, "c0", 4))
        #expect(t.count == 51 && t.currentCount == 1)
        // An evicted key that comes back is new.
        #expect(Self.touch(&t, "a1", 5))
        #expect(t.record("a1").pointee.firstSeen == 5)
        // a0 was kept (it moved to the generation that is now the previous one).
        #expect(!Self.touch(&t, "a0", 6))
        #expect(t.record("a0").pointee.firstSeen == 1)
    }

    @Test func memoryStaysBoundedUnderManyIdentities() {
        var t = IdentityTable(limit: 1_000)
        var maxCapacity = 0
        for i in 0..<200_000 {
            let r = t.record("id-\(i)")
            if i % 3 == 0 { r.pointee.hours = [UInt64(i)] }
            if i % 7 == 0 { let x = t.extra(r); t.storage.extras[x].alertedHour = Int64(i) }
            #expect(t.count <= 1_000)
            maxCapacity = max(maxCapacity, t.capacity)
        }
        #expect(maxCapacity <= 2_048)   // nextPowerOfTwo(2 × limit)
        #expect(t.storage.extras.count <= 1_000 + 500)
        // The newest identities are kept with their state and side entries.
        let r = t.record("id-199983")   // a multiple of 3 and 7
        #expect(r.pointee.hours == [199_983])
        #expect(t.storage.extras[Int(r.pointee.extra)].alertedHour == 199_983)
        #expect(t.record("id-199999").pointee.extra == -1)
    }

    /// The same accesses as `Generations` (the map the table replaces, still used for the
    /// failure state): which keys are new and how many are kept agree at every step.
    @Test func agreesWithGenerations() {
        struct V: GenerationValue {
            static var fresh: V { V() }
            var isNew = true
            var firstSeen = Int64.max
        }
        var rng = SystemRandomNumberGenerator()
        for limit in [2, 3, 10, 64] {
            var t = IdentityTable(limit: limit)
            var g = Generations<String, V>(limit: limit)
            for step in 0..<5_000 {
                let key = "k\(Int.random(in: 0..<(limit * 2), using: &rng))"
                let newInTable = Self.touch(&t, key, Int64(step))
                var newInMap = false
                g.modify(key) { v in if v.firstSeen == .max { v.firstSeen = Int64(step); newInMap = true } }
                #expect(newInTable == newInMap)
                #expect(t.count == g.count)
                #expect(t.currentCount == g.current.count)
            }
        }
    }

    @Test func copiesAreIndependent() {
        var a = IdentityTable(limit: 1_000)
        for i in 0..<10 { Self.touch(&a, "id-\(i)", Int64(i)) }
        var b = a
        b.record("id-3").pointee.firstSeen = 99
        Self.touch(&b, "only-in-b", 1)
        #expect(a.record("id-3").pointee.firstSeen == 3)
        #expect(a.count == 10 && b.count == 11)
        #expect(b.record("id-3").pointee.firstSeen == 99)
    }

    @Test func hashReadsEveryByte() {
        let base = Array("0123456789abcdef0123".utf8)
        var seen: Set<UInt64> = []
        for n in 0...base.count {
            seen.insert(base.prefix(n).withUnsafeBytes { IdentityTable.hash($0) })
            for i in 0..<n {
                var b = Array(base.prefix(n)); b[i] ^= 1
                seen.insert(b.withUnsafeBytes { IdentityTable.hash($0) })
            }
        }
        #expect(seen.count == (base.count + 1) + base.count * (base.count + 1) / 2)
        // A String hashes as its UTF-8 bytes (native, small, and bridged alike).
        let s = "user-12345 ü"
        #expect(IdentityTable.hash(s) == Array(s.utf8).withUnsafeBytes { IdentityTable.hash($0) })
        #expect(IdentityTable.hash(String(s.dropFirst(0))) == IdentityTable.hash(s))
    }
}
