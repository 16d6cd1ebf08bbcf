/**
 * Reading a small input file (the config, the I2P keyring) so that no path can make the build hang or swallow
 * memory: only a regular file, at most `maxBytes`, read with that cap.
 *
 * The file is opened first, non-blocking (opening a FIFO with no writer would otherwise wait forever), and its
 * type and size are taken from the open descriptor, so the path cannot be swapped for a FIFO or a device between
 * the check and the read. The read stops one byte past the cap: a file that grows while it is read is refused too,
 * and /dev/zero (refused as a device anyway) could never be read to its end.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

export class InputFileError extends Error {}

function kind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function human(bytes: number): string {
  return bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`;
}

/** The file's bytes, or an InputFileError whose message says what the path is instead (no field name: the caller's). */
export function readRegularFile(path: string, maxBytes: number): { bytes: Uint8Array; mtimeSeconds: number } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    throw new InputFileError(`cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new InputFileError(`is ${kind(st)}, not a regular file`);
    if (st.size > maxBytes) throw new InputFileError(`is larger than ${human(maxBytes)} (${st.size} bytes)`);
    const buf = new Uint8Array(maxBytes + 1);
    let n = 0;
    for (;;) {
      let got: number;
      try {
        got = readSync(fd, buf, n, buf.length - n, null);
      } catch (e) {
        throw new InputFileError(`cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
      }
      if (got === 0) break;
      n += got;
      if (n > maxBytes) throw new InputFileError(`is larger than ${human(maxBytes)} (it grew while being read)`);
    }
    return { bytes: buf.slice(0, n), mtimeSeconds: Math.floor(st.mtimeMs / 1000) };
  } finally {
    closeSync(fd);
  }
}
