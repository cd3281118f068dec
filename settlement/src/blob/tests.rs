use proptest::prelude::*;

use super::*;

/// Data of `len` bytes, none of them zero (so that a damaged trailing byte is never
/// mistaken for data).
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| u8::try_from(i % 251).unwrap().wrapping_add(seed) | 1).collect()
}

#[test]
fn the_stream_starts_with_the_length_and_fills_31_bytes_of_each_element() {
    let blobs = encode(&[0xaa, 0xbb]).unwrap();
    assert_eq!(blobs.len(), 1);
    let b = blobs[0].as_slice();
    assert_eq!(&b[..8], &[0x00, 0x00, 0x00, 0x00, 0x02, 0xaa, 0xbb, 0x00]);
    assert!(b[8..].iter().all(|&x| x == 0));
    // Stream byte 31 is the first payload byte of element 1, at blob byte 33.
    let d = data(40, 0);
    let b = encode(&d).unwrap();
    assert_eq!(b[0][32], 0);
    assert_eq!(b[0][33], d[31 - LENGTH_BYTES]);
    assert_eq!(b[0][31], d[30 - LENGTH_BYTES]);
}

#[test]
fn the_blob_count_follows_the_length_up_to_six() {
    for (len, blobs) in [
        (0, 1),
        (PAYLOAD_PER_BLOB - LENGTH_BYTES, 1),
        (PAYLOAD_PER_BLOB - LENGTH_BYTES + 1, 2),
        (MAX_DATA - 1, 6),
        (MAX_DATA, 6),
    ] {
        let d = data(len, 3);
        let encoded = encode(&d).unwrap();
        assert_eq!(encoded.len(), blobs, "{len} bytes");
        assert_eq!(decode(&encoded).unwrap(), d, "{len} bytes");
    }
    assert_eq!(encode(&data(MAX_DATA + 1, 0)), Err(BlobError::TooLarge { len: MAX_DATA + 1, needed: 7 }));
    assert_eq!(MAX_DATA, 761_852);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every data round-trips, and its blobs are the only ones that decode to it: every
    /// element's first byte is 0 and nothing follows the data.
    #[test]
    fn encode_decode_round_trips(d in proptest::collection::vec(any::<u8>(), 0..300_000)) {
        let blobs = encode(&d).unwrap();
        prop_assert_eq!(blobs.len(), blobs_for(d.len()));
        for b in &blobs {
            prop_assert!((0..BYTES_PER_BLOB).step_by(ELEMENT_BYTES).all(|i| b[i] == 0));
        }
        prop_assert_eq!(decode(&blobs).unwrap(), d);
    }
}

/// Two blobs' worth of data with room after it, damaged in every way the decoder checks:
/// each is an error naming the blob and the byte.
#[test]
fn damaged_blobs_are_named_errors() {
    let d = data(PAYLOAD_PER_BLOB + 1_000, 7);
    let good = encode(&d).unwrap();
    assert_eq!(good.len(), 2);
    let damaged = |blob: usize, byte: usize, value: u8| {
        let mut b = good.clone();
        b[blob][byte] = value;
        decode(&b)
    };
    // The first byte of field elements across both blobs (every 61st, the first and the last).
    for blob in 0..2 {
        let elements = (0..ELEMENTS_PER_BLOB).step_by(61).chain([ELEMENTS_PER_BLOB - 1]);
        for e in elements {
            let byte = e * ELEMENT_BYTES;
            assert_eq!(damaged(blob, byte, 0x80), Err(BlobError::Padding { blob, byte, value: 0x80 }));
        }
    }
    // A byte after the data: the first one after it, and the last of the last blob.
    let (blob, byte) = locate(LENGTH_BYTES + d.len());
    assert_eq!(blob, 1);
    assert_eq!(damaged(blob, byte, 1), Err(BlobError::Trailing { blob: 1, byte, value: 1 }));
    let last = BYTES_PER_BLOB - 1;
    assert_eq!(damaged(1, last, 9), Err(BlobError::Trailing { blob: 1, byte: last, value: 9 }));
    // The length: more than two blobs hold; fewer than the second blob needs.
    let too_long = damaged(0, 1, 0x01).unwrap_err();
    assert!(matches!(too_long, BlobError::Length { blobs: 2, .. }), "{too_long}");
    assert!(too_long.to_string().starts_with("blob 0: bytes 1-4: the length prefix says 16"), "{too_long}");
    let short = damaged(0, 2, 0x00).unwrap_err();
    assert!(matches!(short, BlobError::Count { needed: 1, got: 2, .. }), "{short}");
    // A blob more, a blob less, none, one of the wrong size.
    let mut more = good.clone();
    more.push(Blob::ZERO);
    assert!(matches!(decode(&more), Err(BlobError::Count { needed: 2, got: 3, .. })));
    let err = decode(&good[..1]).unwrap_err();
    assert!(matches!(err, BlobError::Length { blobs: 1, .. }), "{err}");
    assert_eq!(decode::<Vec<u8>>(&[]), Err(BlobError::NoBlobs));
    let cut = [good[0][..BYTES_PER_BLOB - 1].to_vec()];
    assert_eq!(decode(&cut), Err(BlobError::Size { blob: 0, len: BYTES_PER_BLOB - 1 }));
    // A data byte changed decodes (to other data): what catches it is the versioned hash.
    let other = damaged(0, 40, 0x00).unwrap();
    assert_ne!(other, d);
    assert_ne!(versioned_hash(0, good[0].as_slice()), versioned_hash(0, encode(&other).unwrap()[0].as_slice()));
}

#[test]
fn padding_errors_say_the_element() {
    let err = BlobError::Padding { blob: 1, byte: 64, value: 0x80 };
    assert_eq!(err.to_string(), "blob 1: byte 64 (the first of field element 2) is 0x80, must be 0x00");
}

#[test]
fn versioned_hashes_are_the_sidecars_and_the_kzg_commitments() {
    // The zero blob's commitment is the point at infinity (0xc0, then zeros).
    let mut infinity = [0u8; 48];
    infinity[0] = 0xc0;
    assert_eq!(versioned_hash(0, Blob::ZERO.as_slice()).unwrap(), kzg_to_versioned_hash(&infinity));
    let blobs = encode(&data(PAYLOAD_PER_BLOB, 1)).unwrap();
    let hashes = versioned_hashes(&blobs).unwrap();
    assert!(hashes.iter().all(|h| h[0] == 0x01));
    assert_ne!(hashes[0], hashes[1]);
    let car = sidecar(blobs).unwrap();
    assert_eq!(car.versioned_hashes().collect::<Vec<_>>(), hashes);
    assert_eq!(car.cell_proofs.len(), 2 * 128);
    car.validate(&hashes, settings()).unwrap();
    // A blob with an element not below the modulus is refused by c-kzg, named.
    let mut bad = [0u8; BYTES_PER_BLOB];
    bad[32..64].fill(0xff);
    let err = versioned_hash(3, &bad).unwrap_err();
    assert!(matches!(err, BlobError::Kzg { blob: 3, .. }), "{err}");
    assert_eq!(versioned_hash(2, &[0; 5]), Err(BlobError::Size { blob: 2, len: 5 }));
}
