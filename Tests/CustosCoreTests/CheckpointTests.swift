import Testing
@testable import CustosCore

@Suite("Checkpoints")
struct CheckpointTests {
    static let specText = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    static let witnessLine = "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"

    static func hash(_ fill: UInt8) -> MerkleHash { MerkleHash(bytes: [UInt8](repeating: fill, count: 32))! }

    func code<T>(_ body: () throws -> T) -> NoteError.Code? {
        do { _ = try body(); return nil } catch let e as NoteError { return e.code } catch { return nil }
    }

    @Test func parsesSpecExample() throws {
        let cp = try Checkpoint.parse(text: Self.specText)
        #expect(cp.origin == "example.com/behind-the-sofa")
        #expect(cp.size == 20852163)
        #expect(cp.rootHash.base64 == "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
        #expect(cp.extensions.isEmpty)
        #expect(cp.text == Self.specText)
    }

    @Test func textFormatAndRoundTrip() throws {
        let cp = Checkpoint(origin: "custos.example/log", size: 0, rootHash: Self.hash(0xab), extensions: ["ext one", "two"])
        #expect(cp.text == "custos.example/log\n0\n\(Self.hash(0xab).base64)\next one\ntwo\n")
        #expect(try Checkpoint.parse(text: cp.text) == cp)
        let max = Checkpoint(origin: "o", size: UInt64.max, rootHash: Self.hash(1))
        #expect(try Checkpoint.parse(text: max.text) == max)
    }

    @Test func parseRejectsMalformed() {
        let root = Self.hash(7).base64
        let bad: [(String, String)] = [
            ("empty", ""),
            ("no final newline", "o\n1\n\(root)"),
            ("two lines", "o\n1\n"),
            ("empty origin", "\n1\n\(root)\n"),
            ("leading zero", "o\n01\n\(root)\n"),
            ("double zero", "o\n00\n\(root)\n"),
            ("sign", "o\n+1\n\(root)\n"),
            ("negative", "o\n-1\n\(root)\n"),
            ("space", "o\n 1\n\(root)\n"),
            ("hex", "o\n0x10\n\(root)\n"),
            ("exponent", "o\n1e3\n\(root)\n"),
            ("empty size", "o\n\n\(root)\n"),
            ("overflow", "o\n18446744073709551616\n\(root)\n"),
            ("non-ASCII digit", "o\n١\n\(root)\n"),
            ("short root", "o\n1\n\(Base64.encode([UInt8](repeating: 1, count: 31)))\n"),
            ("long root", "o\n1\n\(Base64.encode([UInt8](repeating: 1, count: 33)))\n"),
            ("unpadded root", "o\n1\n\(root.dropLast())\n"),
            ("hex root", "o\n1\n\(Self.hash(7).hex)\n"),
            ("empty extension", "o\n1\n\(root)\n\n"),
            ("empty extension between", "o\n1\n\(root)\na\n\nb\n"),
            ("control char", "o\u{01}\n1\n\(root)\n"),
            ("CR", "o\n1\r\n\(root)\n"),
        ]
        for (label, text) in bad {
            #expect(code { try Checkpoint.parse(text: text) } == .malformedCheckpoint, "\(label)")
        }
        #expect(code { try Checkpoint.parse(text: "o\n18446744073709551615\n\(root)\n") } == nil)
        #expect(code { try Checkpoint.parse(text: "o\n0\n\(root)\n") } == nil)
    }

    @Test func signAndOpen() throws {
        let s = try NoteSigner.generate(name: "custos.example/log")
        let cp = Checkpoint(origin: "custos.example/log", size: 42, rootHash: Self.hash(3))
        let signed = try SignedCheckpoint.sign(cp, signer: s)
        #expect(signed.note.hasPrefix(cp.text + "\n— custos.example/log "))
        let opened = try SignedCheckpoint.open(signed.note, verifier: s.verifier)
        #expect(opened == signed)
        #expect(opened.checkpoint == cp)

        // Witness cosignatures are ignored.
        let cosigned = try SignedCheckpoint.open(signed.note + Self.witnessLine, verifier: s.verifier)
        #expect(cosigned.checkpoint == cp)

        // Wrong key.
        let other = try NoteSigner.generate(name: "custos.example/log")
        #expect(code { try SignedCheckpoint.open(signed.note, verifier: other.verifier) } == .noVerifiedSignature)
    }

    @Test func originMustMatchKeyName() throws {
        let s = try NoteSigner.generate(name: "custos.example/log")
        let cp = Checkpoint(origin: "custos.example/other", size: 1, rootHash: Self.hash(3))
        #expect(code { try SignedCheckpoint.sign(cp, signer: s) } == .originMismatch)
        let note = try s.sign(cp.text)  // a valid note, but for another origin
        #expect(code { try SignedCheckpoint.open(note, verifier: s.verifier) } == .originMismatch)
    }

    @Test func signRejectsInvalidCheckpoints() throws {
        let s = try NoteSigner.generate(name: "o")
        for cp in [
            Checkpoint(origin: "", size: 1, rootHash: Self.hash(1)),
            Checkpoint(origin: "o\n2", size: 1, rootHash: Self.hash(1)),
            Checkpoint(origin: "o", size: 1, rootHash: Self.hash(1), extensions: [""]),
            Checkpoint(origin: "o", size: 1, rootHash: Self.hash(1), extensions: ["a\nb"]),
            Checkpoint(origin: "o", size: 1, rootHash: Self.hash(1), extensions: ["a\tb"]),
        ] {
            #expect(code { try SignedCheckpoint.sign(cp, signer: s) } == .malformedCheckpoint)
        }
    }

    @Test func nonCheckpointNoteRejected() throws {
        let s = try NoteSigner.generate(name: "o")
        let note = try s.sign("o\n1\n")
        #expect(code { try SignedCheckpoint.open(note, verifier: s.verifier) } == .malformedCheckpoint)
    }

    /// 2,000 random mutations (byte flips, truncations, insertions, deletions) of a valid
    /// signed checkpoint carrying a witness cosignature: each must be rejected, or — only if
    /// the checkpoint text was untouched (e.g. the mutation hit the ignored witness line) —
    /// open to the identical checkpoint. Never crash.
    @Test func fuzzMutations() throws {
        let skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
        let s = try NoteSigner(skey: skey)
        let cp = Checkpoint(origin: "PeterNeumann", size: 123_456, rootHash: Self.hash(0x5a), extensions: ["ext"])
        let signed = try SignedCheckpoint.sign(cp, signer: s)
        let original = Array((signed.note + Self.witnessLine).utf8)
        let textLen = cp.text.utf8.count
        #expect(try SignedCheckpoint.open(original, verifier: s.verifier).checkpoint == cp)

        var rng = SeededRNG(seed: 0xC057_05C0_FFEE)
        let interesting: [UInt8] = [0x00, 0x09, 0x0A, 0x20, 0x2B, 0x2D, 0x3D, 0x30, 0x41, 0x7F, 0x80, 0xC0, 0xE2, 0x94, 0xFF]
        var accepted = 0, rejected = 0
        for _ in 0..<2_000 {
            var b = original
            let ops = 1 + Int(rng.next() % 3)
            for _ in 0..<ops {
                guard !b.isEmpty else { break }
                let i = Int(rng.next() % UInt64(b.count))
                switch rng.next() % 5 {
                case 0: b[i] ^= UInt8(1 << (rng.next() % 8))                         // bit flip
                case 1: b[i] = interesting[Int(rng.next() % UInt64(interesting.count))] // byte set
                case 2: b.removeSubrange(i...)                                        // truncation
                case 3: b.insert(interesting[Int(rng.next() % UInt64(interesting.count))], at: i) // insertion
                default: b.remove(at: i)                                              // deletion
                }
            }
            if b == original { continue }
            do {
                let got = try SignedCheckpoint.open(b, verifier: s.verifier)
                accepted += 1
                #expect(got.checkpoint == cp)
                #expect(Array(b.prefix(textLen + 1)) == Array(original.prefix(textLen + 1)),
                        "accepted a note whose text was mutated")
            } catch let e as NoteError {
                rejected += 1
                #expect(!e.message.isEmpty)
            } catch {
                Issue.record("unexpected error type: \(error)")
            }
        }
        #expect(accepted + rejected > 1_900)
        #expect(rejected > accepted)
        #expect(accepted > 0, "some mutations should land in the ignored witness line")
    }
}

