import CustosCore

/// Where things live under a Custos data directory.
///
/// ```
/// <data>/trail/checkpoint              latest signed checkpoint (C2SP tlog-checkpoint)
/// <data>/trail/tile/<L>/<N>[.p/<W>]    Merkle tiles (C2SP tlog-tiles)
/// <data>/trail/tile/entries/<N>[.p/<W>] entry bundles: uint16-BE length-prefixed canonical JSON
/// <data>/trail/pruned                  minimum index after pruning (signed note; absent = 0)
/// <data>/checkpoints/<size>            every checkpoint ever signed (20-digit size), for rollback checks
/// <data>/keys/trail.key                signing key (signed-note private key, mode 0600)
/// <data>/keys/trail.vkey               verifier key (public)
/// <data>/index.sqlite                  the query index (derived; `custos reindex` rebuilds it)
/// ```
public struct TrailLayout: Sendable {
    public var dataDirectory: String
    public init(dataDirectory: String) {
        var d = dataDirectory
        while d.count > 1 && d.hasSuffix("/") { d.removeLast() }
        self.dataDirectory = d
    }
    public var trailDirectory: String { dataDirectory + "/trail" }
    public var checkpointPath: String { trailDirectory + "/checkpoint" }
    public var historyDirectory: String { dataDirectory + "/checkpoints" }
    /// The minimum index (C2SP tlog-tiles "Pruning"): entry bundles below it may be gone.
    public var prunedPath: String { trailDirectory + "/pruned" }
    public var keysDirectory: String { dataDirectory + "/keys" }
    public var signingKeyPath: String { keysDirectory + "/trail.key" }
    public var verifierKeyPath: String { keysDirectory + "/trail.vkey" }
    public var indexPath: String { dataDirectory + "/index.sqlite" }

    public func tilePath(level: Int, index: UInt64, width: Int) -> String {
        trailDirectory + "/" + TilePath.tile(level: level, index: index, width: width)
    }
    public func bundlePath(index: UInt64, width: Int) -> String {
        trailDirectory + "/" + TilePath.entries(index: index, width: width)
    }
    public func historyPath(size: UInt64) -> String {
        let s = String(size)
        return historyDirectory + "/" + String(repeating: "0", count: max(0, 20 - s.count)) + s
    }
}
