/**
 * @module store-config
 * The `store:` section of flexscript.yaml.
 */
import { z } from 'zod';

export const storeConfigSchema = z
  .object({
    /** SQLite database file (the embedded default). */
    sqlite: z.string().startsWith('/', 'must be an absolute path').optional(),
  })
  .strict();

export type StoreConfig = z.output<typeof storeConfigSchema>;
