import Foundation
import Testing
@testable import CustosCore

/// c2sp.org/tlog-cosignature, Ed25519 (type 0x04). The spec publishes no key for its example
/// cosignature, so beyond its layout (key ID, then the big-endian timestamp that matches the
/// example's `time` line) these are round trips and refusals.
@Suite("Cosignatures")
struct CosignatureTests {
    static let checkpointText = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"

    func code<T>(_ body: () throws -> T) -> NoteError.Code? {
        do { _ = try body(); return nil } catch let e as NoteError { return e.code } catch { return nil }
    }

    /// A checkpoint note signed by a log key, then cosigned at `time`.
    func cosigned(_ w: CosignatureSigner, time: UInt64 = 1_679_315_147) throws -> (log: NoteSigner, note: String) {
        let log = try NoteSigner.generate(name: "example.com/behind-the-sofa")
        let note = try log.sign(Self.checkpointText)
        return (log, note + (try w.cosign(text: Self.checkpointText, timestamp: time)))
    }

    @Test func specExampleLayout() throws {
        let line = "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
        let sig = try SignedNote.parseSignatureLine(line)
        #expect(sig.name == "witness.example.com/w1")
        #expect(sig.bytes.count == 72)
        #expect(sig.bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } == 1_679_315_147)
        #expect(sig.line == line + "\n")
    }

    @Test func messageIsHeaderTimeAndBody() {
        let m = CosignatureFormat.message(text: Array(Self.checkpointText.utf8), timestamp: 1_679_315_147)
        #expect(String(decoding: m, as: UTF8.self) == "cosignature/v1\ntime 1679315147\n" + Self.checkpointText)
    }

    @Test func signVerifyRoundTrip() throws {
        let w = try CosignatureSigner.generate(name: "witness.example/w1")
        let (log, note) = try cosigned(w)
        #expect(try w.verifier.verify(note) == 1_679_315_147)
        // The log's own signature still verifies; the cosignature is just another line to it.
        let opened = try SignedNote.open(note, verifiers: [log.verifier])
        #expect(opened.otherSignatures.map(\.name) == ["witness.example/w1"])
        // Key ID with type 0x04, and the vkey round-trips.
        #expect(w.keyID == NoteFormat.keyID(name: w.name, type: 0x04, publicKey: w.verifier.publicKey))
        let v = try CosignatureVerifier(vkey: w.vkey)
        #expect(v == w.verifier)
        #expect(Base64.decode(w.vkey.split(separator: "+", maxSplits: 2)[2])?.first == 0x04)
        let again = try CosignatureSigner(skey: w.skey)
        #expect(again.vkey == w.vkey)
    }

    @Test func tamperedBodyTimeOrSignatureRefused() throws {
        let w = try CosignatureSigner.generate(name: "witness.example/w1")
        let (log, note) = try cosigned(w)
        // Body: another root hash, re-signed by the log so only the cosignature is wrong.
        let otherText = Self.checkpointText.replacingOccurrences(of: "20852163", with: "20852164")
        let cosig = String(note.split(separator: "\n").last!) + "\n"
        let moved = try log.sign(otherText) + cosig
        #expect(code { try w.verifier.verify(moved) } == .badSignature)
        // Time: the 8 timestamp bytes changed.
        var sig = try SignedNote.parseSignatureLine(cosig)
        var bytes = sig.bytes
        bytes[7] ^= 1
        sig = NoteSignature(name: sig.name, keyID: sig.keyID, bytes: bytes)
        let retimed = try log.sign(Self.checkpointText) + sig.line
        #expect(code { try w.verifier.verify(retimed) } == .badSignature)
        // Signature: one bit of the Ed25519 part.
        bytes = try SignedNote.parseSignatureLine(cosig).bytes
        bytes[40] ^= 0x80
        let flipped = try log.sign(Self.checkpointText) + NoteSignature(name: sig.name, keyID: sig.keyID, bytes: bytes).line
        #expect(code { try w.verifier.verify(flipped) } == .badSignature)
        // Truncated: no longer 8 + 64 bytes.
        let short = try log.sign(Self.checkpointText) + NoteSignature(name: sig.name, keyID: sig.keyID, bytes: Array(bytes.prefix(70))).line
        #expect(code { try w.verifier.verify(short) } == .badSignature)
    }

    @Test func wrongKeyRefused() throws {
        let w = try CosignatureSigner.generate(name: "witness.example/w1")
        let other = try CosignatureSigner.generate(name: "witness.example/w1")
        let (_, note) = try cosigned(w)
        // Same name, other key: a different key ID, so the line is not this key's.
        #expect(code { try other.verifier.verify(note) } == .noVerifiedSignature)
        // A plain Ed25519 note signature by the same key is not a cosignature.
        let log = try NoteSigner.generate(name: "example.com/behind-the-sofa")
        #expect(code { try w.verifier.verify(try log.sign(Self.checkpointText)) } == .noVerifiedSignature)
    }

    @Test func zeroOrHugeTimestampRefused() throws {
        let w = try CosignatureSigner.generate(name: "witness.example/w1")
        #expect(code { try w.cosign(text: Self.checkpointText, timestamp: 0) } == .invalidText)
        #expect(code { try w.cosign(text: Self.checkpointText, timestamp: UInt64(Int64.max) + 1) } == .invalidText)
        #expect(code { try w.cosign(text: "not a checkpoint\n", timestamp: 5) } == .malformedCheckpoint)
    }

    @Test func ed25519NoteKeysAreAcceptedAsCosignerKeys() throws {
        // transparency-dev's NewSignerForCosignatureV1 / NewVerifierForCosignatureV1 take type 0x01 keys.
        let n = try NoteSigner.generate(name: "witness.example/w2")
        let w = try CosignatureSigner(skey: n.skey)
        let v = try CosignatureVerifier(vkey: n.vkey)
        #expect(v == w.verifier)
        #expect(v.keyID != n.keyID)
        let (_, note) = try cosigned(w, time: 42)
        #expect(try v.verify(note) == 42)
    }

    @Test func badKeysRefused() throws {
        let w = try CosignatureSigner.generate(name: "witness.example/w1")
        var parts = w.vkey.split(separator: "+", maxSplits: 2).map(String.init)
        parts[1] = "00000000"
        #expect(code { try CosignatureVerifier(vkey: parts.joined(separator: "+")) } == .invalidKey)
        #expect(code { try CosignatureVerifier(vkey: "no-plus-signs") } == .invalidKey)
        #expect(code { try CosignatureSigner(skey: "PRIVATE+KEY+x+00000000+AAAA") } == .invalidKey)
        #expect(code { try CosignatureSigner.generate(name: "has space") } == .invalidName)
    }

    @Test func originHashIsHexSHA256() {
        // SHA-256("") is the well-known e3b0c442...; the origin line hashes like any string.
        #expect(Checkpoint.originHash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}
