// The wallet as an NFC card: every APDU goes to the core, nothing is decided here.
package tessera.demo

import android.nfc.cardemulation.HostApduService
import android.os.Bundle

class TesseraHceService : HostApduService() {
    private val model get() = (application as TesseraApp).model

    override fun processCommandApdu(commandApdu: ByteArray, extras: Bundle?): ByteArray =
        model.processApdu(commandApdu)

    override fun onDeactivated(reason: Int) = model.onTapEnded()
}
