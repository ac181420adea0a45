/* schema.h: forward-only schema migrations of the inventory.  Migration i
 * takes PRAGMA user_version from i to i + 1; a released migration is never
 * edited, only followed by a new one. */
#ifndef MGMT_SCHEMA_H
#define MGMT_SCHEMA_H 1

struct db;

int schema_migration_count(void);
const char *schema_migration(int i);
/* Rows a migration seeds that need generated values (provider UUIDs).
 * Runs inside the migration's transaction. */
int schema_migration_seed(struct db *db, int i);

#endif
