#!/usr/bin/env bash
# Builds TesseraFFI.xcframework (static libraries for iOS devices, the iOS
# simulator and macOS, with the generated header and module map) so that
# `swift test` and Xcode can link the Swift package. Needs macOS with Xcode
# and the Rust targets below; it cannot run on the Linux CI machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
PROFILE=${PROFILE:-release-ffi}
TARGETS=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${TARGETS[@]}"
for t in "${TARGETS[@]}"; do cargo build -p tessera-ffi --profile "$PROFILE" --target "$t"; done
T=${CARGO_TARGET_DIR:-target}
OUT=bindings/swift/build
rm -rf "$OUT" bindings/swift/TesseraFFI.xcframework
mkdir -p "$OUT/headers" "$OUT/ios-sim" "$OUT/macos"
cp bindings/swift/Sources/tesseraFFI/include/tesseraFFI.h bindings/swift/Sources/tesseraFFI/include/module.modulemap "$OUT/headers/"
lipo -create "$T/aarch64-apple-ios-sim/$PROFILE/libtessera_ffi.a" "$T/x86_64-apple-ios/$PROFILE/libtessera_ffi.a" \
  -output "$OUT/ios-sim/libtessera_ffi.a"
lipo -create "$T/aarch64-apple-darwin/$PROFILE/libtessera_ffi.a" "$T/x86_64-apple-darwin/$PROFILE/libtessera_ffi.a" \
  -output "$OUT/macos/libtessera_ffi.a"
xcodebuild -create-xcframework \
  -library "$T/aarch64-apple-ios/$PROFILE/libtessera_ffi.a" -headers "$OUT/headers" \
  -library "$OUT/ios-sim/libtessera_ffi.a" -headers "$OUT/headers" \
  -library "$OUT/macos/libtessera_ffi.a" -headers "$OUT/headers" \
  -output bindings/swift/TesseraFFI.xcframework
echo "built bindings/swift/TesseraFFI.xcframework"
