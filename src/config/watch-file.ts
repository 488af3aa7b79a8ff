import { watch } from 'node:fs';
import path from 'node:path';

/**
 * Calls `onChange` when the config file changes. The directory is watched, not the file, since
 * editors and config-map updates replace the file (a rename) rather than write it in place;
 * events are debounced because one save fires several.
 */
export function watchConfigFile(file: string, onChange: () => void, debounceMs = 250): () => void {
  const name = path.basename(file);
  let timer: NodeJS.Timeout | null = null;
  const watcher = watch(path.dirname(file), { persistent: false }, (_event, changed) => {
    if (changed !== null && changed !== name && !changed.startsWith('..')) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  watcher.on('error', () => watcher.close());
  return () => {
    if (timer) clearTimeout(timer);
    watcher.close();
  };
}
