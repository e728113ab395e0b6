/// The set of event keys already in the trail: open addressing with linear probing over the
/// keys' own bits (they are SHA-256 output), mixed with a per-process random seed so that
/// nobody can choose ids that pile up in one place. One probe sequence per insert, no
/// rehashing of keys on growth, backward-shift deletion (no tombstones).
struct EventKeySet {
    private var slots: [EventKey]
    private var mask: Int
    private var shift: UInt64
    private(set) var count = 0
    /// The key (0, 0) marks an empty slot; it is recorded here when it is a member.
    private var hasZero = false
    private let seed = UInt64.random(in: .min ... .max)

    init(minimumCapacity: Int = 0) {
        var n = 16
        while n < 2 * minimumCapacity { n *= 2 }
        slots = [EventKey](repeating: EventKey(hi: 0, lo: 0), count: n)
        mask = n - 1
        shift = UInt64(64 - n.trailingZeroBitCount)
    }

    @inline(__always) private func home(_ k: EventKey) -> Int {
        let x = ((k.lo ^ seed) &* 0x9E37_79B9_7F4A_7C15) ^ k.hi
        return Int(truncatingIfNeeded: (x &* 0xBF58_476D_1CE4_E5B9) >> shift)
    }

    @inline(__always) private static func isEmpty(_ k: EventKey) -> Bool { k.hi == 0 && k.lo == 0 }

    func contains(_ k: EventKey) -> Bool {
        if Self.isEmpty(k) { return hasZero }
        var i = home(k)
        while true {
            let s = slots[i]
            if Self.isEmpty(s) { return false }
            if s == k { return true }
            i = (i + 1) & mask
        }
    }

    /// Adds `k`; false if it was already a member.
    @discardableResult
    mutating func insert(_ k: EventKey) -> Bool {
        if Self.isEmpty(k) {
            if hasZero { return false }
            hasZero = true; count += 1
            return true
        }
        if 2 * (count + 1) > slots.count { grow() }
        var i = home(k)
        while true {
            let s = slots[i]
            if Self.isEmpty(s) { break }
            if s == k { return false }
            i = (i + 1) & mask
        }
        slots[i] = k
        count += 1
        return true
    }

    /// Removes `k` if it is a member.
    mutating func remove(_ k: EventKey) {
        if Self.isEmpty(k) {
            if hasZero { hasZero = false; count -= 1 }
            return
        }
        var i = home(k)
        while true {
            let s = slots[i]
            if Self.isEmpty(s) { return }
            if s == k { break }
            i = (i + 1) & mask
        }
        // Backward-shift deletion: move later members of the run into the hole when their
        // home position allows it.
        var hole = i
        var j = i
        while true {
            j = (j + 1) & mask
            let s = slots[j]
            if Self.isEmpty(s) { break }
            let h = home(s)
            // `s` may move to `hole` unless its home lies cyclically in (hole, j].
            let between = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j)
            if !between {
                slots[hole] = s
                hole = j
            }
        }
        slots[hole] = EventKey(hi: 0, lo: 0)
        count -= 1
    }

    /// Makes room for `n` more members without growing on the way.
    mutating func reserveCapacity(forAdding n: Int) {
        while 2 * (count + n) > slots.count { grow() }
    }

    private mutating func grow() {
        let old = slots
        let n = old.count * 2
        slots = [EventKey](repeating: EventKey(hi: 0, lo: 0), count: n)
        mask = n - 1
        shift = UInt64(64 - n.trailingZeroBitCount)
        for k in old where !Self.isEmpty(k) {
            var i = home(k)
            while !Self.isEmpty(slots[i]) { i = (i + 1) & mask }
            slots[i] = k
        }
    }
}
