/// The sending side of a protocol session: one ordered queue drained by one pump task.
///
/// Two kinds of producers feed it. A party's own streams (`enqueueWhenRoom`) wait while more than
/// `highWaterBytes` are queued, so a large input is never materialised as messages all at once.
/// Replies computed in the receive loop (`enqueue`) never wait: if both parties' receive loops could
/// block on sending while neither reads, a symmetric protocol would deadlock once TCP buffers fill.
actor Outbox {
    private var queue: [[UInt8]] = []
    private var head = 0
    private var queuedBytes = 0
    private let highWaterBytes: Int
    private var pumpWaiter: CheckedContinuation<Void, Never>?
    private var roomWaiters: [CheckedContinuation<Void, Never>] = []
    private var finished = false
    private var failed = false

    init(highWaterBytes: Int) { self.highWaterBytes = highWaterBytes }

    func enqueue(_ message: [UInt8]) {
        guard !failed else { return }
        queue.append(message)
        queuedBytes += message.count
        pumpWaiter?.resume()
        pumpWaiter = nil
    }

    func enqueueWhenRoom(_ message: [UInt8]) async throws {
        while queuedBytes > highWaterBytes && !failed {
            await withCheckedContinuation { roomWaiters.append($0) }
        }
        try Task.checkCancellation()
        enqueue(message)
    }

    /// No more messages will be enqueued; the pump ends once the queue is empty.
    func finish() {
        finished = true
        pumpWaiter?.resume()
        pumpWaiter = nil
    }

    /// Releases every waiter: the session is being torn down after an error.
    func fail() {
        failed = true
        finished = true
        pumpWaiter?.resume()
        pumpWaiter = nil
        for w in roomWaiters { w.resume() }
        roomWaiters.removeAll()
    }

    /// The next message to send, or nil once finished and drained (or failed).
    func next() async -> [UInt8]? {
        while head == queue.count && !finished {
            await withCheckedContinuation { pumpWaiter = $0 }
        }
        if failed || head == queue.count { return nil }
        let message = queue[head]
        head += 1
        queuedBytes -= message.count
        if head > 1024 && head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        if queuedBytes <= highWaterBytes {
            for w in roomWaiters { w.resume() }
            roomWaiters.removeAll()
        }
        return message
    }
}
