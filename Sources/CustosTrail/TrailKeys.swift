import CustosCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The trail's signing key on disk: `keys/trail.key` (mode 0600, signed-note private key
/// format) and `keys/trail.vkey` (the verifier key, public).
public enum TrailKeys {
    /// Creates a new key; refuses to replace an existing one (that would orphan every
    /// checkpoint signed so far).
    public static func generate(layout: TrailLayout, origin: String) throws -> NoteSigner {
        if FileIO.exists(layout.signingKeyPath) {
            throw TrailError(.key, "\(layout.signingKeyPath) already exists; refusing to replace a trail's signing key")
        }
        if FileIO.exists(layout.checkpointPath) || FileIO.exists(layout.verifierKeyPath) {
            throw TrailError(.key, "\(layout.dataDirectory) already holds a trail but its signing key \(layout.signingKeyPath) is missing; restore the key (a new one could not continue this trail)")
        }
        let signer = try NoteSigner.generate(name: origin)
        try FileIO.mkdirs(layout.keysDirectory)
        _ = chmod(layout.keysDirectory, 0o700)
        try FileIO.writeFile(layout.signingKeyPath, Array((signer.skey + "\n").utf8), mode: 0o600, sync: true, exclusive: true)
        _ = chmod(layout.signingKeyPath, 0o600)
        try FileIO.replaceAtomically(layout.verifierKeyPath, Array((signer.vkey + "\n").utf8))
        return signer
    }

    public static func load(layout: TrailLayout) throws -> NoteSigner {
        guard let bytes = try FileIO.readFile(layout.signingKeyPath, limit: 4096) else {
            throw TrailError(.notInitialized, "no signing key at \(layout.signingKeyPath); run `custos keygen --data \(layout.dataDirectory)`")
        }
        var st = stat()
        if stat(layout.signingKeyPath, &st) == 0, st.st_mode & 0o077 != 0 {
            throw TrailError(.key, "\(layout.signingKeyPath) is readable by group or others (mode \(String(st.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            return try NoteSigner(skey: text)
        } catch {
            throw TrailError(.key, "\(layout.signingKeyPath) is not a valid signing key")
        }
    }

    /// Loads the key, or generates one with `origin` when the data directory has none.
    public static func loadOrGenerate(layout: TrailLayout, origin: String) throws -> (NoteSigner, created: Bool) {
        if FileIO.exists(layout.signingKeyPath) { return (try load(layout: layout), false) }
        return (try generate(layout: layout, origin: origin), true)
    }
}

