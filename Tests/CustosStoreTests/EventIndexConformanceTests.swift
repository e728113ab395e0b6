import CustosCore
import CustosStore
import Foundation
import Testing

/// One suite, run against every index backend (the same checks for each).
enum Backend: String, CaseIterable, CustomStringConvertible {
    case sqlite, memory
    var description: String { rawValue }

    func make() throws -> (any EventIndex, cleanup: () -> Void) {
        switch self {
        case .memory: return (InMemoryEventIndex(), {})
        case .sqlite:
            let dir = NSTemporaryDirectory() + "custos-index-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return (try SQLiteEventIndex(path: dir + "/index.sqlite"), { try? FileManager.default.removeItem(atPath: dir) })
        }
    }
}

func event(_ i: Int, path: String, name: String?, kind: IdentityKind, outcome: Outcome, env: String?, action: Action, second: Int64) -> AccessEvent {
    AccessEvent(id: EventID.make(instance: "c", key: "r\(i)"), time: EventTime(seconds: 1_750_000_000 + second, nanos: 5, digits: 9),
                source: .init(kind: "openbao", instance: "c"), action: action, outcome: outcome,
                secret: .init(store: "secret/", path: path, environment: env),
                identity: .init(id: name.map { "entity-" + $0 }, name: name, kind: kind), origin: .init(ip: "10.1.1.\(i)"),
                requestID: "r\(i)")
}

let corpus: [AccessEvent] = [
    event(0, path: "secret/data/prod/db", name: "alice", kind: .human, outcome: .success, env: "prod", action: .read, second: 0),
    event(1, path: "secret/data/prod/api", name: "payments", kind: .service, outcome: .denied, env: "prod", action: .read, second: 10),
    event(2, path: "secret/data/dev/db", name: "alice", kind: .human, outcome: .success, env: "dev", action: .write, second: 20),
    event(3, path: "secret/data/prod/db", name: "root", kind: .root, outcome: .success, env: "prod", action: .read, second: 30),
    event(4, path: "secret/data/Prod/db", name: nil, kind: .unknown, outcome: .denied, env: nil, action: .read, second: 40),
    event(5, path: "secret/metadata/prod/db", name: "ci-[main]", kind: .pipeline, outcome: .error, env: "prod", action: .list, second: 50),
]

@Suite struct EventIndexConformanceTests {
    func filled(_ b: Backend) throws -> (any EventIndex, () -> Void) {
        let (idx, cleanup) = try b.make()
        try idx.append(Array(corpus[0..<2]), firstIndex: 0, origin: "o.example/t")
        try idx.append(Array(corpus[2...]), firstIndex: 2, origin: "o.example/t")
        return (idx, cleanup)
    }

    func indices(_ idx: any EventIndex, _ configure: (inout EventQuery) -> Void) throws -> [UInt64] {
        var q = EventQuery()
        configure(&q)
        let rows = try idx.query(q)
        #expect(try idx.count(q) == rows.count || q.limit != nil)
        return rows
    }

    @Test(arguments: Backend.allCases)
    func sizeOriginAndRoundTrip(_ b: Backend) throws {
        let (idx, cleanup) = try filled(b); defer { cleanup() }
        #expect(try idx.indexedSize() == 6)
        #expect(try idx.origin() == "o.example/t")
        #expect(try idx.query(EventQuery()) == Array(0..<6))
        #expect(Set(try idx.allEventIDs()) == Set(corpus.map(\.id)))
    }

    @Test(arguments: Backend.allCases)
    func filters(_ b: Backend) throws {
        let (idx, cleanup) = try filled(b); defer { cleanup() }
        #expect(try indices(idx) { $0.secret = "secret/data/prod/*" } == [0, 1, 3])
        #expect(try indices(idx) { $0.secret = "secret/*/prod/db" } == [0, 3, 5])   // * crosses '/'
        #expect(try indices(idx) { $0.secret = "secret/data/[Pp]rod/db" } == [0, 3, 4])
        #expect(try indices(idx) { $0.secret = "secret/data/?rod/db" } == [0, 3, 4])
        #expect(try indices(idx) { $0.identity = "alice" } == [0, 2])
        #expect(try indices(idx) { $0.identity = "entity-pay*" } == [1])
        #expect(try indices(idx) { $0.identity = "ci-[[]main]" } == [5])
        #expect(try indices(idx) { $0.kinds = [.human, .root] } == [0, 2, 3])
        #expect(try indices(idx) { $0.outcomes = [.denied] } == [1, 4])
        #expect(try indices(idx) { $0.environments = ["prod"] } == [0, 1, 3, 5])
        #expect(try indices(idx) { $0.actions = ["write", "list"] } == [2, 5])
        #expect(try indices(idx) { $0.from = EventTime(seconds: 1_750_000_010, nanos: 5); $0.to = EventTime(seconds: 1_750_000_030, nanos: 5) } == [1, 2])
        #expect(try indices(idx) { $0.secret = "secret/data/prod/*"; $0.kinds = [.human] } == [0])
        #expect(try indices(idx) { $0.limit = 2 } == [0, 1])
        #expect(try indices(idx) { $0.kinds = [.human]; $0.environments = ["prod"]; $0.secret = "secret/data/prod/*"; $0.actions = ["read"]; $0.outcomes = [.success]; $0.from = EventTime(seconds: 1_750_000_001) } == [])
    }

    @Test(arguments: Backend.allCases)
    func appendsMustBeContiguousAndFromOneTrail(_ b: Backend) throws {
        let (idx, cleanup) = try filled(b); defer { cleanup() }
        let extra = event(9, path: "p", name: "x", kind: .human, outcome: .success, env: nil, action: .read, second: 99)
        #expect(throws: IndexError.self) { try idx.append([extra], firstIndex: 7, origin: "o.example/t") }
        #expect(throws: IndexError.self) { try idx.append([extra], firstIndex: 6, origin: "other.example/t") }
        #expect(try idx.indexedSize() == 6, "a refused append changes nothing")
        try idx.append([extra], firstIndex: 6, origin: "o.example/t")
        #expect(try idx.indexedSize() == 7)
    }

    @Test(arguments: Backend.allCases)
    func resetEmptiesEverything(_ b: Backend) throws {
        let (idx, cleanup) = try filled(b); defer { cleanup() }
        try idx.reset()
        #expect(try idx.indexedSize() == 0)
        #expect(try idx.origin() == nil)
        #expect(try idx.query(EventQuery()).isEmpty)
        try idx.append(corpus, firstIndex: 0, origin: "new.example/t")
        #expect(try idx.count(EventQuery()) == 6)
    }

    @Test func sqliteIndexSurvivesReopen() throws {
        let dir = NSTemporaryDirectory() + "custos-index-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let idx = try SQLiteEventIndex(path: dir + "/i.sqlite")
            try idx.append(corpus, firstIndex: 0, origin: "o.example/t")
        }
        let again = try SQLiteEventIndex(path: dir + "/i.sqlite")
        #expect(try again.indexedSize() == 6)
        #expect(try again.query(EventQuery()) == Array(0..<6))
        var q = EventQuery(); q.identity = "root"
        #expect(try again.query(q) == [3])
    }

    /// The Swift glob used by the in-memory index agrees with SQLite's GLOB on random input.
    @Test func globAgreesWithSQLite() throws {
        let (idx, cleanup) = try Backend.sqlite.make(); defer { cleanup() }
        let alphabet: [Character] = ["a", "b", "/", "*", "?", "[", "]", "^", "-", "c"]
        var rng = SystemRandomNumberGenerator()
        var paths: [AccessEvent] = []
        for i in 0..<60 {
            let p = i < 6 ? ["c", "b", "]", "-", "a", "c]"][i]
                : String((0..<Int.random(in: 0...6, using: &rng)).map { _ in ["a", "b", "/", "c", "-", "]"].randomElement(using: &rng)! })
            paths.append(event(100 + i, path: p, name: "n", kind: .human, outcome: .success, env: nil, action: .read, second: Int64(i)))
        }
        try idx.append(paths, firstIndex: 0, origin: "g.example/t")
        // Fixed cases first (a reversed range still matches its start, as in SQLite; found by
        // this test in CI), then random ones.
        let fixed = ["[c-[]", "[c-a]", "[]-a]", "[^]]", "[a-]", "[-a]", "[a-c-b]", "[^c-[]", "[]]", "[b-b]"]
        for i in 0..<2000 {
            let pattern = i < fixed.count ? fixed[i]
                : String((0..<Int.random(in: 1...5, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
            var q = EventQuery(); q.secret = pattern
            let fromSQLite = Set(try idx.query(q))
            let fromSwift = Set(paths.enumerated().filter { Glob.matches(pattern, $0.element.secret!.path) }.map { UInt64($0.offset) })
            #expect(fromSQLite == fromSwift, "pattern \(pattern)")
        }
    }
}
