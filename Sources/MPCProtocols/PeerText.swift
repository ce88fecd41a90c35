/// Free text a peer sends (a refusal's reason, an abort's, a progress unit): kept, logged and shown only
/// cut to a bounded length, so that one message cannot fill a node's database or its logs.
public enum PeerText {
    public static func cut(_ text: String, limit: Int = 2000) -> String {
        guard text.count > limit else { return text }
        return String(text.prefix(limit)) + "… (\(text.utf8.count) bytes, cut)"
    }
}
