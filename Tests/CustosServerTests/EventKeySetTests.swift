@testable import CustosServer
import Testing

@Suite struct EventKeySetTests {
    /// Random inserts and removals (with clustered keys, the zero key, growth) behave like `Set`.
    @Test func behavesLikeASet() {
        var rng = SystemRandomNumberGenerator()
        var set = EventKeySet()
        var reference = Set<EventKey>()
        var keys: [EventKey] = [EventKey(hi: 0, lo: 0)]
        for i in 0..<3000 {
            // Few distinct low words and high words: long probe runs and many shifts on removal.
            keys.append(EventKey(hi: UInt64(i % 7), lo: UInt64.random(in: 0...40, using: &rng)))
            keys.append(EventKey(hi: .random(in: .min ... .max, using: &rng), lo: .random(in: .min ... .max, using: &rng)))
        }
        for step in 0..<60_000 {
            let k = keys[Int.random(in: 0..<keys.count, using: &rng)]
            switch step % 5 {
            case 0, 1, 2:
                #expect(set.insert(k) == reference.insert(k).inserted)
            case 3:
                set.remove(k); reference.remove(k)
            default:
                if step % 1000 == 4 { set.reserveCapacity(forAdding: 500) }
                #expect(set.contains(k) == reference.contains(k))
            }
            #expect(set.count == reference.count)
        }
        for k in keys { #expect(set.contains(k) == reference.contains(k)) }
        for k in reference { set.remove(k) }
        #expect(set.count == 0)
        for k in keys { #expect(!set.contains(k)) }
    }
}
