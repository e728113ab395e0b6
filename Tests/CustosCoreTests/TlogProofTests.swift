import CustosCore
import Testing

@Suite struct TlogProofTests {
    static let checkpoint = """
        example.com/fancylog
        109482
        sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

        — example.com/fancylog hI2DJw1roloI=
        — witness1.example mJirIkljqY9v2B/5bg==

        """

    /// The example from the spec (its signatures shortened there already).
    static let specExample = """
        c2sp.org/tlog-proof@v1
        extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
        index 73894
        gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
        B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
        EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
        RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
        AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=


        """ + checkpoint

    @Test func parsesSpecExample() throws {
        let text = String(Self.specExample)
        let p = try TlogProof.parse(text)
        #expect(p.index == 73894)
        #expect(p.proof.count == 5)
        #expect(p.proof[0].base64 == "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=")
        #expect(p.extra.map { Array($0.prefix(30)) } == Array("age-v1.2.1-darwin-arm64.tar.gz".utf8))
        #expect(p.checkpoint == Self.checkpoint)
        #expect(p.formatted() == text)
    }

    @Test func roundTrips() throws {
        var rng = SeededRNG(seed: 5)
        for n in 0..<40 {
            let proof = (0..<(n % 20)).map { _ in TestTree.leaves[Int(rng.next() % 1000)] }
            let extra: [UInt8]? = switch n % 3 {
            case 0: nil
            case 1: []
            default: (0..<(n + 1)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            }
            let index: UInt64 = n == 0 ? 0 : (n == 1 ? UInt64.max : rng.next() >> (rng.next() % 64))
            let p = TlogProof(extra: extra, index: index, proof: proof, checkpoint: Self.checkpoint)
            let text = p.formatted()
            #expect(try TlogProof.parse(text) == p)
        }
        let minimal = TlogProof(index: 0, proof: [], checkpoint: "o\n1\nAAAA\n")
        #expect(minimal.formatted() == "c2sp.org/tlog-proof@v1\nindex 0\n\no\n1\nAAAA\n")
        #expect(try TlogProof.parse(minimal.formatted()) == minimal)
    }

    static let h = TestTree.leaves[0].base64

    /// (text, line number the error must name)
    static let malformed: [(String, Int)] = [
        ("", 1),
        ("c2sp.org/tlog-proof@v1", 1),
        ("c2sp.org/tlog-proof@v2\nindex 0\n\nx\n", 1),
        ("c2sp.org/tlog-proof@v1 \nindex 0\n\nx\n", 1),
        ("C2SP.org/tlog-proof@v1\nindex 0\n\nx\n", 1),
        ("c2sp.org/tlog-proof@v1\r\nindex 0\n\nx\n", 1),
        ("\nc2sp.org/tlog-proof@v1\nindex 0\n\nx\n", 1),
        ("c2sp.org/tlog-proof@v1\n", 2),
        ("c2sp.org/tlog-proof@v1\n\nx\n", 2),
        ("c2sp.org/tlog-proof@v1\nindex 01\n\nx\n", 2),
        ("c2sp.org/tlog-proof@v1\nindex -1\n\nx\n", 2),
        ("c2sp.org/tlog-proof@v1\nindex +1\n\nx\n", 2),
        ("c2sp.org/tlog-proof@v1\nindex \n\nx\n", 2),
        ("c2sp.org/tlog-proof@v1\nindex  1\n\nx\n", 2),
        ("c2sp.org/tlog-proof@v1\nindex 1 \n\nx\n", 2),
        ("c2sp.org/tlog-proof@v1\nindex 18446744073709551616\n\nx\n", 2),
        ("c2sp.org/tlog-proof@v1\nindex 0x10\n\nx\n", 2),
        ("c2sp.org/tlog-proof@v1\nIndex 1\n\nx\n", 2),
        ("c2sp.org/tlog-proof@v1\nextra !!!!\nindex 1\n\nx\n", 2),
        ("c2sp.org/tlog-proof@v1\nextra AAA\nindex 1\n\nx\n", 2),
        ("c2sp.org/tlog-proof@v1\nextra AA==\nextra AA==\nindex 1\n\nx\n", 3),
        ("c2sp.org/tlog-proof@v1\nindex 1\nextra AA==\n\nx\n", 3),
        ("c2sp.org/tlog-proof@v1\nindex 1\n\(h)\nAAAA\n\nx\n", 4),
        ("c2sp.org/tlog-proof@v1\nindex 1\n\(h)\n\(h.dropLast())\n\nx\n", 4),
        ("c2sp.org/tlog-proof@v1\nindex 1\n\(h)\n\(h) \n\nx\n", 4),
        ("c2sp.org/tlog-proof@v1\nindex 1\n\(h)\n\(Base64.encode([UInt8](repeating: 1, count: 33)))\n\nx\n", 4),
        ("c2sp.org/tlog-proof@v1\nindex 1\n\(h)\nexample.com/log\n1\n\(h)\n", 4),
        ("c2sp.org/tlog-proof@v1\nindex 1\n\(h)\n", 4),
        ("c2sp.org/tlog-proof@v1\nindex 1\n\(h)\n\n", 5),
        ("c2sp.org/tlog-proof@v1\nindex 1\n\n\nx\n", 4),
        ("c2sp.org/tlog-proof@v1\nindex 1\n\nx\n1", 5),
    ]

    @Test func rejectsMalformed() {
        for (text, line) in Self.malformed {
            do {
                let p = try TlogProof.parse(text)
                Issue.record("accepted \(text.debugDescription) as \(p)")
            } catch {
                #expect(error.line == line, "\(text.debugDescription): \(error)")
                #expect(!error.reason.isEmpty)
            }
        }
    }

    /// Mutated proofs (bit flips, bytes set, cut, inserted, deleted): each is refused with a
    /// line number and a reason, or parses to a proof that formats and parses back to itself.
    @Test func fuzzMutations() throws {
        let original = Array(String(Self.specExample).utf8)
        var rng = SeededRNG(seed: 0x7100_9F00_F5)
        let interesting: [UInt8] = [0x00, 0x09, 0x0A, 0x20, 0x2B, 0x2F, 0x3D, 0x30, 0x39, 0x41, 0x7F, 0x80, 0xC0, 0xE2, 0xFF]
        var accepted = 0, rejected = 0
        for _ in 0..<2_000 {
            var b = original
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                guard !b.isEmpty else { break }
                let i = Int(rng.next() % UInt64(b.count))
                switch rng.next() % 5 {
                case 0: b[i] ^= UInt8(1 << (rng.next() % 8))
                case 1: b[i] = interesting[Int(rng.next() % UInt64(interesting.count))]
                case 2: b.removeSubrange(i...)
                case 3: b.insert(interesting[Int(rng.next() % UInt64(interesting.count))], at: i)
                default: b.remove(at: i)
                }
            }
            if b == original { continue }
            do {
                let p = try TlogProof.parse(String(decoding: b, as: UTF8.self))
                accepted += 1
                #expect(try TlogProof.parse(p.formatted()) == p)
                #expect(p.proof.count <= 63)
            } catch {
                rejected += 1
                #expect(error.line >= 1 && !error.reason.isEmpty, "\(error)")
            }
        }
        #expect(accepted + rejected > 1_900)
        #expect(rejected > accepted)
        #expect(accepted > 0, "mutations inside the checkpoint's text or an extra's payload still parse")
    }

    @Test func tooLongProof() {
        let lines = Array(repeating: Self.h, count: 65).joined(separator: "\n")
        #expect(throws: TlogProofError.self) {
            try TlogProof.parse("c2sp.org/tlog-proof@v1\nindex 1\n\(lines)\n\nx\n")
        }
    }
}

