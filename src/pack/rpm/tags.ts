/**
 * The RPM tags, types and flag values this writer uses, and only those.
 *
 * Numbers from rpm's `include/rpm/rpmtag.h`, `rpmds.h` and `rpmfiles.h`, and the format description in rpm's
 * `docs/manual/format_header.md` / `format_v4.md`.
 */

/** Index entry data types (`rpmTagType`). */
export const RPM_TYPE = {
  INT16: 3,
  INT32: 4,
  STRING: 6,
  BIN: 7,
  STRING_ARRAY: 8,
  /** A string per locale listed in HEADERI18NTABLE; we list only "C". */
  I18NSTRING: 9,
} as const;

/** Tags of the signature header (`rpmSigTag`). */
export const SIG_TAG = {
  /** region tag of the signature header; its data is the trailing region entry */
  HEADERSIGNATURES: 62,
  /** SHA-256 of the main header, lowercase hex (STRING) */
  SHA256: 273,
  /** size of main header + compressed payload (INT32) */
  SIZE: 1000,
  /** MD5 of main header + compressed payload (BIN, 16 bytes) */
  MD5: 1004,
  /** size of the uncompressed payload, i.e. the cpio archive (INT32) */
  PAYLOADSIZE: 1007,
} as const;

/** Tags of the main header (`rpmTag`). */
export const TAG = {
  /** region tag of the main header ("immutable" region covered by the SHA-256) */
  HEADERIMMUTABLE: 63,
  /** locales of the I18NSTRING entries: ["C"] */
  HEADERI18NTABLE: 100,
  NAME: 1000,
  VERSION: 1001,
  RELEASE: 1002,
  /** one-line summary (I18NSTRING) */
  SUMMARY: 1004,
  /** long description (I18NSTRING) */
  DESCRIPTION: 1005,
  /** build time, seconds since the epoch (INT32): SOURCE_DATE_EPOCH here */
  BUILDTIME: 1006,
  /** build host name: a fixed string, never the real host */
  BUILDHOST: 1007,
  /** sum of FILESIZES (INT32) */
  SIZE: 1009,
  LICENSE: 1014,
  PACKAGER: 1015,
  /** package group (I18NSTRING) */
  GROUP: 1016,
  URL: 1020,
  OS: 1021,
  ARCH: 1022,
  /** %pre script body */
  PREIN: 1023,
  /** %post script body */
  POSTIN: 1024,
  /** %preun script body */
  PREUN: 1025,
  /** %postun script body */
  POSTUN: 1026,
  /** per file: size in bytes; a symlink's is the target's length (INT32[]) */
  FILESIZES: 1028,
  /** per file: st_mode with the type bits (INT16[]) */
  FILEMODES: 1030,
  /** per file: device number of device nodes, 0 here (INT16[]) */
  FILERDEVS: 1033,
  /** per file: mtime (INT32[]) */
  FILEMTIMES: 1034,
  /** per file: hex digest of regular files' contents, "" otherwise (STRING_ARRAY) */
  FILEDIGESTS: 1035,
  /** per file: symlink target, "" otherwise */
  FILELINKTOS: 1036,
  /** per file: RPMFILE_* flags (%config, %doc, ...) (INT32[]) */
  FILEFLAGS: 1037,
  /** per file: owner name */
  FILEUSERNAME: 1039,
  /** per file: group name */
  FILEGROUPNAME: 1040,
  /** name of the source package; rpm treats a header *without* it as a source package */
  SOURCERPM: 1044,
  /** per file: which attributes `rpm -V` checks (INT32[]) */
  FILEVERIFYFLAGS: 1045,
  PROVIDENAME: 1047,
  REQUIREFLAGS: 1048,
  REQUIRENAME: 1049,
  REQUIREVERSION: 1050,
  /** changelog entry times (INT32[]), newest first */
  CHANGELOGTIME: 1080,
  /** changelog entry authors ("Name <mail> - version-release") */
  CHANGELOGNAME: 1081,
  /** changelog entry texts */
  CHANGELOGTEXT: 1082,
  /** interpreter of %pre */
  PREINPROG: 1085,
  /** interpreter of %post */
  POSTINPROG: 1086,
  /** interpreter of %preun */
  PREUNPROG: 1087,
  /** interpreter of %postun */
  POSTUNPROG: 1088,
  /** per file: device of the file, with FILEINODES identifies hard links (INT32[]) */
  FILEDEVICES: 1095,
  /** per file: inode number, 1..n here (INT32[]) */
  FILEINODES: 1096,
  /** per file: language, "" for all */
  FILELANGS: 1097,
  PROVIDEFLAGS: 1112,
  PROVIDEVERSION: 1113,
  /** per file: index into DIRNAMES (INT32[]) */
  DIRINDEXES: 1116,
  /** per file: last path component */
  BASENAMES: 1117,
  /** distinct directories of the files, each with a trailing slash */
  DIRNAMES: 1118,
  /** "cpio" */
  PAYLOADFORMAT: 1124,
  /** "gzip" */
  PAYLOADCOMPRESSOR: 1125,
  /** compression level, as a string: "9" */
  PAYLOADFLAGS: 1126,
  /** algorithm of FILEDIGESTS (INT32): PGPHASHALGO_SHA256 */
  FILEDIGESTALGO: 5011,
  /** "utf-8": all strings in this header are UTF-8 */
  ENCODING: 5062,
  /** hex digest of the compressed payload (STRING_ARRAY, one element) */
  PAYLOADDIGEST: 5092,
  /** algorithm of PAYLOADDIGEST and PAYLOADDIGESTALT (INT32) */
  PAYLOADDIGESTALGO: 5093,
  /** hex digest of the uncompressed payload (STRING_ARRAY, one element), rpm >= 4.16 */
  PAYLOADDIGESTALT: 5097,
} as const;

/** `PGPHASHALGO_SHA256`, the value of FILEDIGESTALGO and PAYLOADDIGESTALGO. */
export const PGPHASHALGO_SHA256 = 8;

/** `rpmsenseFlags` used in REQUIREFLAGS / PROVIDEFLAGS. */
export const SENSE = {
  ANY: 0,
  LESS: 1 << 1,
  GREATER: 1 << 2,
  EQUAL: 1 << 3,
  /** the dependency is the interpreter of a scriptlet */
  INTERP: 1 << 8,
  SCRIPT_PRE: 1 << 9,
  SCRIPT_POST: 1 << 10,
  SCRIPT_PREUN: 1 << 11,
  SCRIPT_POSTUN: 1 << 12,
  /** an `rpmlib(...)` feature of rpm itself */
  RPMLIB: 1 << 24,
  /** a `config(NAME)` dependency */
  CONFIG: 1 << 28,
} as const;

/** `rpmfileAttrs` used in FILEFLAGS. */
export const FILE_FLAG = {
  CONFIG: 1 << 0,
  DOC: 1 << 1,
  NOREPLACE: 1 << 4,
  LICENSE: 1 << 7,
} as const;

/** `RPMVERIFY_ALL`: `rpm -V` checks every attribute (digest, size, link, mtime, mode, owner, rdev, ...). */
export const RPMVERIFY_ALL = 0xffff_ffff;

/** The lead's and header's OS value for Linux (`os_canon: Linux: Linux 1` in rpmrc). */
export const OSNUM_LINUX = 1;
