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

    @Test func tooLongProof() {
        let lines = Array(repeating: Self.h, count: 65).joined(separator: "\n")
        #expect(throws: TlogProofError.self) {
            try TlogProof.parse("c2sp.org/tlog-proof@v1\nindex 1\n\(lines)\n\nx\n")
        }
    }
}

