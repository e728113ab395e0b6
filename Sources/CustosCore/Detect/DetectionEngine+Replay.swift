extension DetectionEngine {
    /// Called after a silent replay of events whose alerts are already in the trail (the
    /// warm-up of a new ingest run): the folds the replay re-opened keep their windows and
    /// totals, but what they folded so far was recorded by the earlier run, so it is not
    /// written again.
    public mutating func markRecorded() {
        for k in open.keys {
            open[k]!.pendingCount = 0
            open[k]!.pendingEvidence = []
        }
    }
}

extension EventTime {
    /// A wall-clock instant (the detection clock) at millisecond precision.
    public init(unixTime t: Double) {
        let s = t.rounded(.down)
        let millis = Int32(min(999, max(0, ((t - s) * 1000).rounded(.down))))
        self.init(seconds: Int64(s), nanos: millis * 1_000_000, digits: 3)
    }
}
