import Foundation

/// A minimal HTTP/1.1 client over one keep-alive loopback connection (blocking POSIX socket): what the
/// lookup benchmark times end to end and what the API tests use to send requests a library would not
/// (a wrong content type, an oversized body). Not part of the daemon.
public final class PlainHTTPClient: @unchecked Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: Data
        public var json: Any? { try? JSONSerialization.jsonObject(with: body) }
    }

    public enum ClientError: Error, CustomStringConvertible {
        case cannotConnect(Int32), closed, malformed(String)
        public var description: String {
            switch self {
            case .cannotConnect(let e): return "cannot connect (errno \(e))"
            case .closed: return "the server closed the connection"
            case .malformed(let d): return "malformed response: \(d)"
            }
        }
    }

    let port: Int
    private var socketFD: Int32 = -1
    private var buffer = [UInt8]()

    public init(port: Int) { self.port = port }
    deinit { if socketFD >= 0 { close(socketFD) } }

    private func connectIfNeeded() throws {
        guard socketFD < 0 else { return }
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(s); throw ClientError.cannotConnect(errno) }
        var one: Int32 = 1
        setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        socketFD = s
        buffer = []
    }

    private func reset() {
        if socketFD >= 0 { close(socketFD) }
        socketFD = -1
        buffer = []
    }

    /// The blocking calls run here, never on Swift's cooperative threads (which the node in the same
    /// process needs: a blocked one would stall it).
    private let queue = DispatchQueue(label: "PlainHTTPClient")

    /// `request` off the cooperative thread pool.
    public func send(_ method: String, _ path: String, headers: [String: String] = [:], body: Data = Data()) async throws -> Response {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.request(method, path, headers: headers, body: body) })
            }
        }
    }

    /// Sends one request and reads its response (blocking). `headers` are sent as given (Host and
    /// Content-Length are added).
    public func request(_ method: String, _ path: String, headers: [String: String] = [:], body: Data = Data()) throws -> Response {
        try connectIfNeeded()
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Length: \(body.count)\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + Array(body)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(socketFD, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }  // the server may answer (413) and close before reading everything
            sent += n
        }
        do { return try readResponse() } catch { reset(); throw error }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(socketFD, &chunk, chunk.count, 0)
        guard n > 0 else { throw ClientError.closed }
        buffer += chunk[0..<n]
    }

    private func readResponse() throws -> Response {
        let separator: [UInt8] = [13, 10, 13, 10]
        var end: Int?
        while end == nil {
            if let r = buffer.firstRange(of: separator) { end = r.lowerBound } else { try fill() }
        }
        let headText = String(decoding: buffer[0..<end!], as: UTF8.self)
        buffer.removeFirst(end! + 4)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw ClientError.malformed(headText) }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = [UInt8]()
        if let length = headers["content-length"].flatMap(Int.init) {
            while buffer.count < length { try fill() }
            body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        } else if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while true {
                var lineEnd: Int?
                while lineEnd == nil {
                    if let r = buffer.firstRange(of: [13, 10]) { lineEnd = r.lowerBound } else { try fill() }
                }
                let size = Int(String(decoding: buffer[0..<lineEnd!], as: UTF8.self).split(separator: ";")[0], radix: 16) ?? 0
                buffer.removeFirst(lineEnd! + 2)
                while buffer.count < size + 2 { try fill() }
                body += buffer[0..<size]
                buffer.removeFirst(size + 2)
                if size == 0 { break }
            }
        }
        if headers["connection"]?.lowercased() == "close" { reset() }
        return Response(status: status, headers: headers, body: Data(body))
    }
}
