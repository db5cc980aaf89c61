// Core NFC as the bindings' NfcChannel: an NFCTagReaderSession for ISO 7816
// tags selects Tessera's AID (listed in Info.plist) on the other phone, and
// each transceive is one sendCommand. iOS apps can only be the reader here:
// see README.md for what iOS allows.
import CoreNFC
import Foundation
import Tessera

final class Iso7816Channel: NfcChannel, @unchecked Sendable {
    private let tag: NFCISO7816Tag
    init(tag: NFCISO7816Tag) { self.tag = tag }

    func transceive(command: Data) throws -> Data {
        guard let apdu = NFCISO7816APDU(data: command) else {
            throw NfcChannelError.Io(errorMessage: "not an APDU: \(command.count) bytes")
        }
        let done = DispatchSemaphore(value: 0)
        var result: Result<Data, Error> = .failure(NfcChannelError.Io(errorMessage: "no answer"))
        tag.sendCommand(apdu: apdu) { data, sw1, sw2, error in
            if let error { result = .failure(NfcChannelError.TagLost(errorMessage: error.localizedDescription)) }
            else { result = .success(data + Data([sw1, sw2])) }
            done.signal()
        }
        // Called on the session's queue's worker, never on the queue itself.
        guard done.wait(timeout: .now() + 5) == .success else { throw NfcChannelError.Io(errorMessage: "timed out") }
        return try result.get()
    }
}

final class NfcGiver: NSObject, NFCTagReaderSessionDelegate {
    private let model: WalletModel
    private let ids: [String]
    private var session: NFCTagReaderSession?
    private let worker = DispatchQueue(label: "tessera.nfc")

    init(model: WalletModel, ids: [String]) {
        self.model = model
        self.ids = ids
    }

    func begin() {
        session = NFCTagReaderSession(pollingOption: .iso14443, delegate: self, queue: nil)
        session?.alertMessage = "Hold your phone near the other phone"
        session?.begin()
    }

    func tagReaderSessionDidBecomeActive(_ session: NFCTagReaderSession) {}

    func tagReaderSession(_ session: NFCTagReaderSession, didInvalidateWithError error: Error) {}

    func tagReaderSession(_ session: NFCTagReaderSession, didDetect tags: [NFCTag]) {
        guard case let .iso7816(tag)? = tags.first else { return session.invalidate(errorMessage: "Not a Tessera wallet") }
        session.connect(to: tags[0]) { error in
            if let error { return session.invalidate(errorMessage: error.localizedDescription) }
            self.worker.async {
                do {
                    let done = try self.model.giveByTap(channel: Iso7816Channel(tag: tag), ids: self.ids)
                    session.alertMessage = done ? "Given" : "Waiting for the other phone: tap again"
                    session.invalidate()
                } catch {
                    session.invalidate(errorMessage: "\(error)")
                }
            }
        }
    }
}
