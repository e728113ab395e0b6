/// The detection engine's per-identity state: a flat open-addressing table (linear probing)
/// of one 128-byte record per identity (two cache lines, 128-byte aligned), keyed by a 64-bit hash of the
/// identity key's UTF-8 bytes (the key is stored once, on insert, and compared on a hit).
///
/// What every event touches is in the record (key, rule cache, first seen, the newest hour of
/// the volume baseline and the reference to the older hours); what few events touch (the
/// hour an identity was last alerted for, its last geolocated access) is in a side array,
/// reached from the record only when needed.
///
/// Memory is bounded as `Generations` bounds it, with the same semantics: identities are kept
/// in two generations of at most `limit / 2` each; when the current generation is full and an
/// identity not in it is seen, the previous generation is forgotten (its records are dropped
/// and their memory freed, in a rebuild of the table) and the current one becomes the
/// previous one. An identity of the previous generation seen again moves to the current one
/// with its state. At most `limit` identities are kept; the table's capacity is the smallest
/// power of two ≥ 2 × the identities kept (load ≤ 1/2), so at most
/// `128 × nextPowerOfTwo(2 × limit)` bytes of records plus each kept identity's strings and
/// hours. An identity that was forgotten and comes back is new (first seen again, no history).
///
/// A value type (copy on write: a copy of the engine gets its own table on its first change).
struct IdentityTable: Sendable {
    struct Record {
        /// The identity key (id, else name).
        var key: String
        /// The name the rule was resolved for.
        var ruleName: String?
        /// volume_anomaly: read counts per UTC hour, sparse: (hour << 24) | count (see
        /// `DetectionEngine.countRead`); `newestHour` holds the newest one.
        var hours: [UInt64]
        var firstSeen: Int64
        var newestHour: UInt64
        /// Nonzero: occupied (high bits of the hash, to skip other keys without reading them).
        var tag: UInt8
        /// The generation the record belongs to (the current one or the one before).
        var generation: UInt8
        /// -2 unresolved, -1 no rule, else the rule's index (-2 again for indexes ≥ Int16.max:
        /// resolved on every event).
        var rule: Int16
        /// Index into `extras`, -1 for none (alertedHour -1, no geolocated access).
        var extra: Int32
        // Second cache line (a record is 128-byte aligned: the hardware fetches the pair).
        /// volume_anomaly: the newest hour entries not yet moved to `hours` (lanes 0..<count,
        /// ascending, after every entry of `hours`), count in lane 7. See
        /// `DetectionEngine.countRead(_:hour:)`: a new hour costs no access to `hours` until
        /// `recentCapacity` of them have gathered.
        var recent: SIMD8<UInt64>
        static let recentCapacity = 7
    }

    struct Extra {
        var alertedHour: Int64 = -1
        var geo: DetectionEngine.GeoMark? = nil
    }

    final class Storage: @unchecked Sendable {
        let records: UnsafeMutablePointer<Record>
        let capacity: Int
        var extras: [Extra] = []

        init(capacity: Int) {
            precondition(capacity > 0 && capacity & (capacity - 1) == 0)
            let raw = UnsafeMutableRawPointer.allocate(byteCount: capacity * MemoryLayout<Record>.stride, alignment: 128)
            raw.initializeMemory(as: UInt8.self, repeating: 0, count: capacity * MemoryLayout<Record>.stride)
            // Zeroed records are empty (tag 0) and never read beyond their tag.
            records = raw.bindMemory(to: Record.self, capacity: capacity)
            self.capacity = capacity
        }

        deinit {
            for i in 0..<capacity where records[i].tag != 0 { (records + i).deinitialize(count: 1) }
            records.deallocate()
        }

        func copy() -> Storage {
            let s = Storage(capacity: capacity)
            for i in 0..<capacity where records[i].tag != 0 { (s.records + i).initialize(to: records[i]) }
            s.extras = extras
            return s
        }
    }

    private(set) var storage: Storage
    /// Identities kept (both generations) and in the current generation.
    private(set) var count = 0
    private(set) var currentCount = 0
    private(set) var generation: UInt8 = 1
    let half: Int
    /// Test hook: the hash is and-ed with this (0 puts every key in one probe chain).
    var hashMask: UInt64 = ~0
    static let minimumCapacity = 64

    init(limit: Int) {
        half = max(1, limit / 2)
        storage = Storage(capacity: Self.minimumCapacity)
    }

    var capacity: Int { storage.capacity }

    /// The record for `key` in the current generation, created (fresh) or moved from the
    /// previous generation if needed. Valid until the next call.
    @inline(__always)
    mutating func record(_ key: String) -> UnsafeMutablePointer<Record> {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        let h = Self.hash(key) & hashMask
        let tag = Self.tag(h)
        var mask = storage.capacity - 1
        var records = storage.records
        var i = Int(truncatingIfNeeded: h) & mask
        while records[i].tag != 0 {
            if records[i].tag == tag && records[i].key == key {
                if records[i].generation == generation { return records + i }
                if currentCount < half {
                    records[i].generation = generation
                    currentCount += 1
                    return records + i
                }
                // Current generation full: the previous one (this record with it) is forgotten.
                break
            }
            i = (i + 1) & mask
        }
        if currentCount >= half {
            rotate()
        }
        if (count + 1) * 2 > storage.capacity {
            rebuild(capacity: storage.capacity * 2)
        }
        if storage.records != records {
            records = storage.records; mask = storage.capacity - 1
            i = Int(truncatingIfNeeded: h) & mask
            while records[i].tag != 0 { i = (i + 1) & mask }
        }
        (records + i).initialize(to: Record(key: key, ruleName: nil, hours: [], firstSeen: .max, newestHour: 0,
                                            tag: tag, generation: generation, rule: -2, extra: -1, recent: .zero))
        count += 1
        currentCount += 1
        return records + i
    }

    /// The record's side entry, created if needed.
    @inline(__always)
    mutating func extra(_ r: UnsafeMutablePointer<Record>) -> Int {
        if r.pointee.extra >= 0 { return Int(r.pointee.extra) }
        storage.extras.append(Extra())
        r.pointee.extra = Int32(storage.extras.count - 1)
        return storage.extras.count - 1
    }

    /// A new generation: the previous one is dropped, the current one becomes the previous.
    mutating func rotate() {
        generation &+= 1
        count = currentCount
        currentCount = 0
        rebuild(capacity: storage.capacity)
    }

    /// Moves the records of the current and previous generations into a new table of
    /// `capacity` (and their side entries into a new side array); the others are freed.
    mutating func rebuild(capacity: Int) {
        let unique = isKnownUniquelyReferenced(&storage)
        let old = storage
        let new = Storage(capacity: capacity)
        let mask = capacity - 1
        let previous = generation &- 1
        var extras: [Extra] = []
        for j in 0..<old.capacity where old.records[j].tag != 0 {
            let g = old.records[j].generation
            guard g == generation || g == previous else {
                if unique { (old.records + j).deinitialize(count: 1); old.records[j].tag = 0 }
                continue
            }
            var i = Int(truncatingIfNeeded: Self.hash(old.records[j].key) & hashMask) & mask
            while new.records[i].tag != 0 { i = (i + 1) & mask }
            if unique {
                (new.records + i).moveInitialize(from: old.records + j, count: 1)
                old.records[j].tag = 0
            } else {
                (new.records + i).initialize(to: old.records[j])
            }
            if new.records[i].extra >= 0 {
                extras.append(old.extras[Int(new.records[i].extra)])
                new.records[i].extra = Int32(extras.count - 1)
            }
        }
        new.extras = extras
        storage = new
    }

    @inline(__always)
    static func tag(_ h: UInt64) -> UInt8 {
        let t = UInt8(truncatingIfNeeded: h >> 56)
        return t == 0 ? 1 : t
    }

    /// A 64-bit hash of the key's UTF-8 bytes (8 bytes at a time, then a final mix), read
    /// in place: no copy and no retain of the key for native strings.
    @inline(__always)
    static func hash(_ key: String) -> UInt64 {
        if let h = key.utf8.withContiguousStorageIfAvailable({ hash(UnsafeRawBufferPointer($0)) }) { return h }
        var k = key
        return k.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let n = bytes.count
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ (UInt64(n) &* 0xC2B2_AE3D_27D4_EB4F)
        var i = 0
        if let base = bytes.baseAddress {
            while i + 8 <= n {
                let w = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                h = (h ^ (w &* 0x87C3_7B91_1142_53D5)).rotatedLeft(31) &* 0x4CF5_AD43_2745_937F
                i += 8
            }
            if i < n {
                var w: UInt64 = 0
                var s: UInt64 = 0
                while i < n { w |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << s; s += 8; i += 1 }
                h = (h ^ (w &* 0x87C3_7B91_1142_53D5)).rotatedLeft(31) &* 0x4CF5_AD43_2745_937F
            }
        }
        // fmix64 (MurmurHash3).
        h ^= h >> 33; h = h &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33; h = h &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return h
    }
}

extension UInt64 {
    @inline(__always) func rotatedLeft(_ n: UInt64) -> UInt64 { (self << n) | (self >> (64 - n)) }
}
