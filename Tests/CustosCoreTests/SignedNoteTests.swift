import Testing
@testable import CustosCore

/// Vectors: the c2sp.org/signed-note example, and the PeterNeumann / EnochRoot vectors from
/// golang.org/x/mod/sumdb/note (package documentation and note_test.go TestSign / TestOpen).
/// Ed25519 is deterministic (RFC 8032), so re-signing must reproduce the published bytes.
@Suite("Signed notes")
struct SignedNoteTests {
    static let specVKey = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
    static let specNote = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"

    static let peterSKey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    static let peterVKey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    static let enochVKey = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
    static let goText = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    static let peterSig = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    static let enochSig = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

    func code<T>(_ body: () throws -> T) -> NoteError.Code? {
        do { _ = try body(); return nil } catch let e as NoteError { return e.code } catch { return nil }
    }

    // MARK: Known answers

    @Test func specExampleVerifies() throws {
        let v = try NoteVerifier(vkey: Self.specVKey)
        #expect(v.name == "example.com/foo")
        #expect(v.keyID == 0x530d903a)
        #expect(v.vkey == Self.specVKey)
        let n = try SignedNote.open(Self.specNote, verifiers: [v])
        #expect(n.text == "This is an example message.\n")
        #expect(n.verifiedBy == ["example.com/foo"])
        #expect(n.otherSignatures.isEmpty)
    }

    @Test func specExampleWithOneTextByteChangedFails() throws {
        let v = try NoteVerifier(vkey: Self.specVKey)
        var b = Array(Self.specNote.utf8)
        b[0] = UInt8(ascii: "t")
        let e = #expect(throws: NoteError.self) { try SignedNote.open(b, verifiers: [v]) }
        #expect(e?.code == .badSignature)
        #expect(e?.line == 3)
        // The message names the key but never echoes the signature.
        #expect(e.map { !$0.description.contains("Uw2QOk") } == true)
    }

    @Test func goVectorsSignByteForByte() throws {
        let s = try NoteSigner(skey: Self.peterSKey)
        #expect(s.name == "PeterNeumann")
        #expect(s.keyID == 0xc74f20a3)
        #expect(s.skey == Self.peterSKey)
        #expect(s.vkey == Self.peterVKey)
        #expect(try s.sign(Self.goText) == Self.goText + "\n" + Self.peterSig)
    }

    @Test func goVectorsOpen() throws {
        let peter = try NoteVerifier(vkey: Self.peterVKey)
        let enoch = try NoteVerifier(vkey: Self.enochVKey)
        #expect(enoch.keyID == 0xaf0cfe78)
        let note = Self.goText + "\n" + Self.peterSig + Self.enochSig

        let one = try SignedNote.open(note, verifiers: [peter])
        #expect(one.text == Self.goText)
        #expect(one.verifiedBy == ["PeterNeumann"])
        #expect(one.otherSignatures.map(\.name) == ["EnochRoot"])
        #expect(one.otherSignatures.first?.keyID == 0xaf0cfe78)
        #expect(one.otherSignatures.first?.bytes.count == 64)

        let both = try SignedNote.open(note, verifiers: [peter, enoch])
        #expect(both.verifiedBy == ["PeterNeumann", "EnochRoot"])
        #expect(both.otherSignatures.isEmpty)

        #expect(code { try SignedNote.open(note, verifiers: []) } == .noVerifiedSignature)

        // Known key, corrupted signature (Go: "invalid signature for key").
        let p = Array(Self.peterSig.unicodeScalars)
        let bad = String(String.UnicodeScalarView(p[..<60])) + "ABCD" + String(String.UnicodeScalarView(p[60...]))
        #expect(code { try SignedNote.open(Self.goText + "\n" + bad, verifiers: [peter]) } == .badSignature)

        // Duplicated signatures; an unknown-key signature that would not verify is ignored.
        let enochBad = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5nABCD2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
        let dup = try SignedNote.open(Self.goText + "\n" + Self.peterSig + Self.peterSig + Self.enochSig + Self.enochSig + enochBad,
                                      verifiers: [peter])
        #expect(dup.verifiedBy == ["PeterNeumann"])
        #expect(dup.otherSignatures.count == 2)

        // Too many signatures (Go rejects 101).
        let many = Self.goText + "\n" + String(repeating: Self.peterSig, count: 101)
        #expect(code { try SignedNote.open(many, verifiers: [peter]) } == .tooLarge)
        let hundred = Self.goText + "\n" + String(repeating: Self.peterSig, count: 100)
        #expect(try SignedNote.open(hundred, verifiers: [peter]).verifiedBy == ["PeterNeumann"])
    }

    /// Go's TestOpen "invalid encoded message syntax" cases, plus more.
    @Test func malformedNotesRejected() throws {
        let peter = try NoteVerifier(vkey: Self.peterVKey)
        let t = Self.goText, s = Self.peterSig
        let sigBody = String(s.dropFirst(2))  // "PeterNeumann x08go…\n"
        let cases: [(String, [UInt8], NoteError.Code)] = [
            ("text only", Array(t.utf8), .malformed),
            ("blank line, no signatures", Array((t + "\n").utf8), .malformed),
            ("missing final newline", Array((t + "\n" + s.dropLast()).utf8), .malformed),
            ("missing blank line", Array((t + s).utf8), .malformed),
            ("control char in text", Array(("\u{01}" + t + "\n" + s).utf8), .malformed),
            ("tab in text", Array(("a\tb\n\n" + s).utf8), .malformed),
            ("CR before newline", Array((t.dropLast() + "\r\n\n" + s).utf8), .malformed),
            ("invalid UTF-8", [0xff] + Array((t + "\n" + s).utf8), .malformed),
            ("overlong UTF-8", [0xc0, 0xaf, 0x0a, 0x0a] + Array(s.utf8), .malformed),
            ("space in name", Array((t + "\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=").utf8), .malformed),
            ("unexpected line", Array((t + "\n" + s + "Unexpected line.\n").utf8), .malformed),
            ("em dash missing", Array((t + "\n" + sigBody).utf8), .malformed),
            ("hyphen instead of em dash", Array((t + "\n- " + sigBody).utf8), .malformed),
            ("en dash instead of em dash", Array((t + "\n– " + sigBody).utf8), .malformed),
            ("no space after dash", Array((t + "\n—" + sigBody).utf8), .malformed),
            ("two spaces after dash", Array((t + "\n—  " + sigBody).utf8), .malformed),
            ("two spaces before signature", Array((t + "\n" + s.replacingFirst(" x08go", with: "  x08go")).utf8), .malformed),
            ("trailing space", Array((t + "\n" + s.dropLast() + " \n").utf8), .malformed),
            ("bad base64 character", Array((t + "\n" + s.replacingFirst("x08go", with: "x08g!")).utf8), .malformed),
            ("unpadded base64", Array((t + "\n" + s.replacingFirst("AM=\n", with: "AM\n")).utf8), .malformed),
            ("signature shorter than key ID", Array((t + "\n— PeterNeumann AAA=\n").utf8), .malformed),
            ("plus in name", Array((t + "\n— Peter+Neumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").utf8), .malformed),
            ("extra blank line after signatures", Array((t + "\n" + s + "\n").utf8), .malformed),
            ("empty note", [], .malformed),
        ]
        for (label, bytes, want) in cases {
            let got = code { try SignedNote.open(bytes, verifiers: [peter]) }
            #expect(got == want, "\(label)")
        }
    }

    @Test func errorMessagesCarryLineNumbers() throws {
        let peter = try NoteVerifier(vkey: Self.peterVKey)
        let e = #expect(throws: NoteError.self) {
            try SignedNote.open("a\nb\u{07}\n\n" + Self.peterSig, verifiers: [peter])
        }
        #expect(e?.line == 2)
        #expect(e?.description.contains("U+0007") == true)
        let e2 = #expect(throws: NoteError.self) {
            try SignedNote.open(Self.goText + "\n" + Self.peterSig + "— PeterNeumann !!!!\n", verifiers: [peter])
        }
        #expect(e2?.code == .malformed)
        #expect(e2?.line == 5)
    }

    @Test func lastBlankLineSeparatesText() throws {
        let s = try NoteSigner.generate(name: "example.com/log")
        let text = "first\n\nsecond\n\n\nthird\n"
        let n = try SignedNote.open(try s.sign(text), verifiers: [s.verifier])
        #expect(n.text == text)
    }

    @Test func noteSizeLimit() throws {
        let s = try NoteSigner.generate(name: "big")
        let text = String(repeating: "x", count: SignedNote.maxNoteSize) + "\n"
        #expect(code { try s.sign(text) } == .tooLarge)
        let note = text + "\n" + "— big AAAAAAAA\n"
        #expect(code { try SignedNote.open(note, verifiers: [s.verifier]) } == .tooLarge)
    }

    // MARK: Round trips

    @Test func generateSignOpenRoundTrip() throws {
        let s = try NoteSigner.generate(name: "custos.example/log")
        let again = try NoteSigner(skey: s.skey)
        #expect(again.keyID == s.keyID)
        #expect(again.vkey == s.vkey)
        let v = try NoteVerifier(vkey: s.vkey)
        #expect(v == s.verifier)
        let note = try s.sign("hello\n")
        #expect(note.hasPrefix("hello\n\n— custos.example/log "))
        let n = try SignedNote.open(note, verifiers: [v])
        #expect(n.text == "hello\n")
        #expect(n.verifiedBy == ["custos.example/log"])
    }

    @Test func wrongKeyIgnoredAndNotEnough() throws {
        let a = try NoteSigner.generate(name: "a.example")
        let b = try NoteSigner.generate(name: "b.example")
        let note = try a.sign("x\n")
        #expect(code { try SignedNote.open(note, verifiers: [b.verifier]) } == .noVerifiedSignature)
        // Same name, different key (hence different ID): still unknown, so ignored.
        let a2 = try NoteSigner.generate(name: "a.example")
        #expect(code { try SignedNote.open(note, verifiers: [a2.verifier]) } == .noVerifiedSignature)
        let n = try SignedNote.open(note, verifiers: [a2.verifier, a.verifier])
        #expect(n.verifiedBy == ["a.example"])
    }

    @Test func twoSignatures() throws {
        let a = try NoteSigner.generate(name: "a.example")
        let b = try NoteSigner.generate(name: "b.example")
        let note = try SignedNote.sign("two\nlines\n", signers: [a, b])
        #expect(note.split(separator: "\n").count == 4)
        #expect(try SignedNote.open(note, verifiers: [a.verifier, b.verifier]).verifiedBy == ["a.example", "b.example"])
        let onlyB = try SignedNote.open(note, verifiers: [b.verifier])
        #expect(onlyB.verifiedBy == ["b.example"])
        #expect(onlyB.otherSignatures.map(\.name) == ["a.example"])
        #expect(onlyB.otherSignatures.first?.keyID == a.keyID)
    }

    @Test func knownKeyWithBadSignatureRejectsWholeNote() throws {
        let a = try NoteSigner.generate(name: "a.example")
        let b = try NoteSigner.generate(name: "b.example")
        // b's signature line computed over a different text, appended to a's valid note.
        let bLine = try b.sign("other\n").split(separator: "\n").last.map(String.init)!
        let note = try a.sign("x\n") + bLine + "\n"
        #expect(try SignedNote.open(note, verifiers: [a.verifier]).verifiedBy == ["a.example"])
        #expect(code { try SignedNote.open(note, verifiers: [a.verifier, b.verifier]) } == .badSignature)
    }

    @Test func ambiguousVerifiers() throws {
        // Two different keys claiming the same name and ID can only be built by hand; an
        // identical verifier listed twice is not ambiguous.
        let a = try NoteSigner.generate(name: "a.example")
        let note = try a.sign("x\n")
        #expect(try SignedNote.open(note, verifiers: [a.verifier, a.verifier]).verifiedBy == ["a.example"])
    }

    @Test func witnessCosignatureLinesAreIgnored() throws {
        // A type-0x04 cosignature line (timestamp || Ed25519 sig = 72 bytes after the key ID),
        // from the c2sp.org/tlog-cosignature example, next to a real log signature.
        let log = try NoteSigner.generate(name: "example.com/behind-the-sofa")
        let text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        let witness = "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
        let n = try SignedNote.open(try log.sign(text) + witness, verifiers: [log.verifier])
        #expect(n.verifiedBy == ["example.com/behind-the-sofa"])
        #expect(n.otherSignatures.count == 1)
        #expect(n.otherSignatures.first?.name == "witness.example.com/w1")
        #expect(n.otherSignatures.first?.bytes.count == 72)
    }

    // MARK: Keys

    @Test func verifierKeysRejected() throws {
        let bad: [String] = [
            "",
            "example.com/foo",
            "example.com/foo+530d903a",
            "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",   // wrong ID
            "example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",   // wrong name
            "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",   // upper-case hex
            "example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",    // 7 digits
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",    // bad base64
            "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",                  // empty name
            "example com+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",       // space in name
            // Go's note_test.go: wrong length key and unknown algorithm, with adjusted key hash.
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        ]
        for k in bad {
            #expect(code { try NoteVerifier(vkey: k) } == .invalidKey, "\(k)")
        }
        // Every proper substring and every single-byte increment of a good key fails (as in Go).
        let good = Array(Self.peterVKey.utf8)
        for i in 0..<good.count {
            var b = good
            b[i] &+= 1
            #expect(code { try NoteVerifier(vkey: String(decoding: b, as: UTF8.self)) } != nil)
            #expect(code { try NoteVerifier(vkey: String(decoding: good[i...].dropLast(), as: UTF8.self)) } != nil)
            #expect(code { try NoteVerifier(vkey: String(decoding: good[(i + 1)...], as: UTF8.self)) } != nil)
        }
    }

    @Test func signerKeysRejected() throws {
        let good = Array(Self.peterSKey.utf8)
        for i in 0..<good.count {
            var b = good
            b[i] &+= 1
            #expect(code { try NoteSigner(skey: String(decoding: b, as: UTF8.self)) } != nil)
            #expect(code { try NoteSigner(skey: String(decoding: good[i...].dropLast(), as: UTF8.self)) } != nil)
            #expect(code { try NoteSigner(skey: String(decoding: good[(i + 1)...], as: UTF8.self)) } != nil)
        }
        let e = #expect(throws: NoteError.self) {
            try NoteSigner(skey: "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
        }
        #expect(e?.code == .invalidKey)
        #expect(e.map { !$0.description.contains("AYEKFA") } == true)
    }

    @Test func namesValidated() {
        for name in ["", "a b", "a+b", "a\u{00A0}b", "a\u{2003}b", "a\u{3000}b", "a\tb", "a\nb", "a\u{7F}b", "a\u{85}b"] {
            #expect(code { try NoteSigner.generate(name: name) } == .invalidName, "\(name.unicodeScalars.map(\.value))")
        }
        #expect(code { try NoteSigner.generate(name: "example.com/log42") } == nil)
        #expect(code { try NoteSigner.generate(name: "résumé.example/日本") } == nil)
    }

    @Test func signRequiresProperText() throws {
        let s = try NoteSigner.generate(name: "a")
        #expect(code { try s.sign("") } == .invalidText)
        #expect(code { try s.sign("no newline") } == .invalidText)
        #expect(code { try s.sign("tab\there\n") } == .invalidText)
    }
}

extension StringProtocol {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        var s = String(self)
        guard let r = s.firstRange(of: target) else { return s }
        s.replaceSubrange(r, with: replacement)
        return s
    }
}
