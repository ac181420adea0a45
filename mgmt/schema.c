/* schema.c: the inventory's tables.  Column names are the API's camelCase
 * field names, so the generic resource code maps one to the other without
 * a translation table.  Dates are wall-clock milliseconds. */
#include "schema.h"

#include "db.h"
#include "kvmstack/util.h"

#define COMMON                                                     \
    "uuid TEXT PRIMARY KEY NOT NULL,"                              \
    "name TEXT NOT NULL,"                                          \
    "description TEXT,"                                            \
    "createDate INTEGER NOT NULL,"                                 \
    "lastOpDate INTEGER NOT NULL,"

static const char *const migrations[] = {
    /* Version 1: every resource of the tutorial. */
    "CREATE TABLE account (" COMMON
    "  type TEXT NOT NULL DEFAULT 'SystemAdmin',"
    "  passwordHash TEXT NOT NULL);"
    "CREATE UNIQUE INDEX account_name ON account(name);"
    "CREATE TABLE session ("
    "  uuid TEXT PRIMARY KEY NOT NULL,"
    "  accountUuid TEXT NOT NULL REFERENCES account(uuid) ON DELETE CASCADE,"
    "  expiredDate INTEGER NOT NULL,"
    "  createDate INTEGER NOT NULL);"
    "CREATE TABLE zone (" COMMON
    "  state TEXT NOT NULL, type TEXT NOT NULL);"
    "CREATE TABLE cluster (" COMMON
    "  zoneUuid TEXT NOT NULL REFERENCES zone(uuid),"
    "  hypervisorType TEXT NOT NULL, type TEXT NOT NULL,"
    "  state TEXT NOT NULL);"
    "CREATE TABLE host (" COMMON
    "  zoneUuid TEXT NOT NULL REFERENCES zone(uuid),"
    "  clusterUuid TEXT NOT NULL REFERENCES cluster(uuid),"
    "  managementIp TEXT NOT NULL UNIQUE, username TEXT NOT NULL,"
    "  sshPort INTEGER NOT NULL, hypervisorType TEXT NOT NULL,"
    "  state TEXT NOT NULL, status TEXT NOT NULL,"
    "  sshHostKeyFingerprint TEXT,"
    "  totalCpuCapacity INTEGER, availableCpuCapacity INTEGER,"
    "  totalMemoryCapacity INTEGER, availableMemoryCapacity INTEGER);"
    "CREATE TABLE primaryStorage (" COMMON
    "  zoneUuid TEXT NOT NULL REFERENCES zone(uuid),"
    "  url TEXT NOT NULL, type TEXT NOT NULL, mountPath TEXT NOT NULL,"
    "  state TEXT NOT NULL, status TEXT NOT NULL,"
    "  totalCapacity INTEGER NOT NULL DEFAULT 0,"
    "  availableCapacity INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (zoneUuid, url));"
    "CREATE TABLE psClusterRef ("
    "  primaryStorageUuid TEXT NOT NULL"
    "    REFERENCES primaryStorage(uuid) ON DELETE CASCADE,"
    "  clusterUuid TEXT NOT NULL REFERENCES cluster(uuid),"
    "  PRIMARY KEY (primaryStorageUuid, clusterUuid));"
    "CREATE TABLE backupStorage (" COMMON
    "  url TEXT NOT NULL, hostname TEXT NOT NULL, username TEXT NOT NULL,"
    "  sshPort INTEGER NOT NULL, type TEXT NOT NULL,"
    "  state TEXT NOT NULL, status TEXT NOT NULL,"
    "  sshHostKeyFingerprint TEXT,"
    "  totalCapacity INTEGER NOT NULL DEFAULT 0,"
    "  availableCapacity INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (hostname, url));"
    "CREATE TABLE bsZoneRef ("
    "  backupStorageUuid TEXT NOT NULL"
    "    REFERENCES backupStorage(uuid) ON DELETE CASCADE,"
    "  zoneUuid TEXT NOT NULL REFERENCES zone(uuid),"
    "  PRIMARY KEY (backupStorageUuid, zoneUuid));"
    "CREATE TABLE image (" COMMON
    "  url TEXT NOT NULL, mediaType TEXT NOT NULL, format TEXT NOT NULL,"
    "  platform TEXT NOT NULL, system INTEGER NOT NULL,"
    "  guestOsType TEXT, type TEXT NOT NULL,"
    "  state TEXT NOT NULL, status TEXT NOT NULL,"
    "  size INTEGER NOT NULL DEFAULT 0, actualSize INTEGER NOT NULL DEFAULT 0,"
    "  sha256Sum TEXT);"
    "CREATE TABLE imageBsRef ("
    "  imageUuid TEXT NOT NULL REFERENCES image(uuid) ON DELETE CASCADE,"
    "  backupStorageUuid TEXT NOT NULL REFERENCES backupStorage(uuid),"
    "  installPath TEXT, status TEXT NOT NULL,"
    "  PRIMARY KEY (imageUuid, backupStorageUuid));"
    "CREATE TABLE l2Network (" COMMON
    "  zoneUuid TEXT NOT NULL REFERENCES zone(uuid),"
    "  physicalInterface TEXT NOT NULL, type TEXT NOT NULL,"
    "  vlan INTEGER, vni INTEGER);"
    "CREATE TABLE l2ClusterRef ("
    "  l2NetworkUuid TEXT NOT NULL REFERENCES l2Network(uuid) ON DELETE CASCADE,"
    "  clusterUuid TEXT NOT NULL REFERENCES cluster(uuid),"
    "  PRIMARY KEY (l2NetworkUuid, clusterUuid));"
    "CREATE TABLE l3Network (" COMMON
    "  l2NetworkUuid TEXT NOT NULL REFERENCES l2Network(uuid),"
    "  zoneUuid TEXT NOT NULL REFERENCES zone(uuid),"
    "  type TEXT NOT NULL, category TEXT NOT NULL, system INTEGER NOT NULL,"
    "  dnsDomain TEXT, state TEXT NOT NULL, ipVersion INTEGER NOT NULL);"
    "CREATE TABLE ipRange (" COMMON
    "  l3NetworkUuid TEXT NOT NULL REFERENCES l3Network(uuid) ON DELETE CASCADE,"
    "  startIp TEXT NOT NULL, endIp TEXT NOT NULL, netmask TEXT NOT NULL,"
    "  gateway TEXT NOT NULL, networkCidr TEXT NOT NULL,"
    "  ipVersion INTEGER NOT NULL, prefixLen INTEGER NOT NULL,"
    "  startInt INTEGER NOT NULL, endInt INTEGER NOT NULL);"
    "CREATE INDEX ipRange_l3 ON ipRange(l3NetworkUuid);"
    "CREATE TABLE l3Dns ("
    "  l3NetworkUuid TEXT NOT NULL REFERENCES l3Network(uuid) ON DELETE CASCADE,"
    "  dns TEXT NOT NULL, position INTEGER NOT NULL,"
    "  PRIMARY KEY (l3NetworkUuid, dns));"
    "CREATE TABLE networkServiceProvider (" COMMON
    "  type TEXT NOT NULL UNIQUE, networkServiceTypes TEXT NOT NULL);"
    "CREATE TABLE l3NetworkService ("
    "  l3NetworkUuid TEXT NOT NULL REFERENCES l3Network(uuid) ON DELETE CASCADE,"
    "  networkServiceProviderUuid TEXT NOT NULL"
    "    REFERENCES networkServiceProvider(uuid),"
    "  networkServiceType TEXT NOT NULL,"
    "  PRIMARY KEY (l3NetworkUuid, networkServiceType));"
    "CREATE TABLE usedIp ("
    "  uuid TEXT PRIMARY KEY NOT NULL,"
    "  l3NetworkUuid TEXT NOT NULL REFERENCES l3Network(uuid),"
    "  ipRangeUuid TEXT NOT NULL REFERENCES ipRange(uuid),"
    "  ip TEXT NOT NULL, ipInt INTEGER NOT NULL,"
    "  usedFor TEXT NOT NULL, ownerUuid TEXT,"
    "  createDate INTEGER NOT NULL,"
    "  UNIQUE (l3NetworkUuid, ipInt));"
    "CREATE TABLE instanceOffering (" COMMON
    "  cpuNum INTEGER NOT NULL, cpuSpeed INTEGER NOT NULL,"
    "  memorySize INTEGER NOT NULL, type TEXT NOT NULL,"
    "  allocatorStrategy TEXT NOT NULL, state TEXT NOT NULL,"
    "  sortKey INTEGER NOT NULL DEFAULT 0,"
    "  zoneUuid TEXT REFERENCES zone(uuid),"
    "  imageUuid TEXT REFERENCES image(uuid),"
    "  managementNetworkUuid TEXT REFERENCES l3Network(uuid),"
    "  publicNetworkUuid TEXT REFERENCES l3Network(uuid),"
    "  isDefault INTEGER);"
    "CREATE TABLE vmInstance (" COMMON
    "  zoneUuid TEXT REFERENCES zone(uuid),"
    "  clusterUuid TEXT REFERENCES cluster(uuid),"
    "  hostUuid TEXT REFERENCES host(uuid),"
    "  lastHostUuid TEXT REFERENCES host(uuid) ON DELETE SET NULL,"
    "  instanceOfferingUuid TEXT REFERENCES instanceOffering(uuid),"
    "  imageUuid TEXT REFERENCES image(uuid),"
    "  defaultL3NetworkUuid TEXT REFERENCES l3Network(uuid),"
    "  hypervisorType TEXT NOT NULL, type TEXT NOT NULL,"
    "  state TEXT NOT NULL, platform TEXT,"
    "  cpuNum INTEGER NOT NULL, cpuSpeed INTEGER NOT NULL,"
    "  memorySize INTEGER NOT NULL, allocatorStrategy TEXT,"
    "  hostname TEXT);"
    "CREATE TABLE vmNic ("
    "  uuid TEXT PRIMARY KEY NOT NULL,"
    "  vmInstanceUuid TEXT NOT NULL"
    "    REFERENCES vmInstance(uuid) ON DELETE CASCADE,"
    "  l3NetworkUuid TEXT NOT NULL REFERENCES l3Network(uuid),"
    "  usedIpUuid TEXT REFERENCES usedIp(uuid),"
    "  ip TEXT, netmask TEXT, gateway TEXT,"
    "  mac TEXT NOT NULL UNIQUE, deviceId INTEGER NOT NULL,"
    "  createDate INTEGER NOT NULL, lastOpDate INTEGER NOT NULL);"
    "CREATE INDEX vmNic_vm ON vmNic(vmInstanceUuid);"
    "CREATE INDEX vmNic_l3 ON vmNic(l3NetworkUuid);"
    "CREATE TABLE vip (" COMMON
    "  l3NetworkUuid TEXT NOT NULL REFERENCES l3Network(uuid),"
    "  usedIpUuid TEXT REFERENCES usedIp(uuid),"
    "  ip TEXT NOT NULL, netmask TEXT NOT NULL, gateway TEXT NOT NULL,"
    "  state TEXT NOT NULL, useFor TEXT, serviceProvider TEXT);"
    "CREATE TABLE portForwardingRule (" COMMON
    "  vipUuid TEXT NOT NULL REFERENCES vip(uuid),"
    "  vipIp TEXT NOT NULL,"
    "  vipPortStart INTEGER NOT NULL, vipPortEnd INTEGER NOT NULL,"
    "  privatePortStart INTEGER NOT NULL, privatePortEnd INTEGER NOT NULL,"
    "  protocolType TEXT NOT NULL, allowedCidr TEXT,"
    "  vmNicUuid TEXT REFERENCES vmNic(uuid),"
    "  guestIp TEXT, state TEXT NOT NULL);"
    "CREATE INDEX pf_vip ON portForwardingRule(vipUuid, protocolType);"
    "CREATE INDEX pf_nic ON portForwardingRule(vmNicUuid);"
    "CREATE INDEX pf_create ON portForwardingRule(createDate);"
    "CREATE TABLE apiJob ("
    "  uuid TEXT PRIMARY KEY NOT NULL, apiName TEXT NOT NULL,"
    "  state TEXT NOT NULL, progress TEXT,"
    "  resourceUuid TEXT, httpStatus INTEGER, result TEXT,"
    "  createDate INTEGER NOT NULL, lastOpDate INTEGER NOT NULL);",
    /* Version 2: host bootstrap (issue 3): facts, the playbook hash a host
     * was last converged with, whether its add completed, job logs. */
    "ALTER TABLE host ADD COLUMN added INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE host ADD COLUMN playbookHash TEXT;"
    "ALTER TABLE host ADD COLUMN architecture TEXT;"
    "ALTER TABLE host ADD COLUMN cpuNum INTEGER;"
    "ALTER TABLE host ADD COLUMN osRelease TEXT;"
    "ALTER TABLE host ADD COLUMN kernelVersion TEXT;"
    "ALTER TABLE host ADD COLUMN libvirtVersion TEXT;"
    "ALTER TABLE host ADD COLUMN qemuVersion TEXT;"
    "ALTER TABLE host ADD COLUMN kvmAvailable INTEGER;"
    "ALTER TABLE host ADD COLUMN agentVersion TEXT;"
    "ALTER TABLE host ADD COLUMN lastError TEXT;"
    "ALTER TABLE host ADD COLUMN lastConnectDate INTEGER;"
    "ALTER TABLE backupStorage ADD COLUMN added INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE backupStorage ADD COLUMN lastError TEXT;"
    "ALTER TABLE apiJob ADD COLUMN log TEXT NOT NULL DEFAULT '';",
    /* Version 3: VMs on hosts (issue 4): image downloads and the image
     * cache of each primary storage, root volumes, host mounts. */
    "ALTER TABLE image ADD COLUMN lastError TEXT;"
    "ALTER TABLE image ADD COLUMN virtualSize INTEGER;"
    "ALTER TABLE primaryStorage ADD COLUMN lastError TEXT;"
    "CREATE TABLE imageCache ("
    "  primaryStorageUuid TEXT NOT NULL"
    "    REFERENCES primaryStorage(uuid) ON DELETE CASCADE,"
    "  imageUuid TEXT NOT NULL REFERENCES image(uuid) ON DELETE CASCADE,"
    "  installPath TEXT NOT NULL, status TEXT NOT NULL,"
    "  createDate INTEGER NOT NULL,"
    "  PRIMARY KEY (primaryStorageUuid, imageUuid));"
    "ALTER TABLE vmInstance ADD COLUMN primaryStorageUuid TEXT"
    "  REFERENCES primaryStorage(uuid);"
    "ALTER TABLE vmInstance ADD COLUMN rootVolumePath TEXT;"
    "ALTER TABLE vmInstance ADD COLUMN lastError TEXT;"
    "ALTER TABLE vmInstance ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0;",
    /* Version 4: virtual routers (issue 5). */
    "ALTER TABLE vmInstance ADD COLUMN applianceL3NetworkUuid TEXT"
    "  REFERENCES l3Network(uuid);"
    "ALTER TABLE vmInstance ADD COLUMN vrStatus TEXT;"
    "ALTER TABLE vmInstance ADD COLUMN vrGen INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX vm_appliance ON vmInstance(applianceL3NetworkUuid);",
    /* Version 5: an account whose password was generated (printed once)
     * must change it at its first login. */
    "ALTER TABLE account ADD COLUMN passwordChangeRequired INTEGER NOT NULL"
    "  DEFAULT 0;",
    /* Version 6: the overlap check of a new rule looks up one rule, the
     * one with the greatest vipPortStart <= the new end (pf_rule.c). */
    "CREATE INDEX pf_vip_port ON portForwardingRule(vipUuid, protocolType,"
    "  vipPortStart);"
    "DROP INDEX pf_vip;",
};

int
schema_migration_count(void)
{
    return (int) ARRAY_SIZE(migrations);
}

const char *
schema_migration(int i)
{
    return migrations[i];
}

int
schema_migration_seed(struct db *db, int i)
{
    if (i == 0) {
        char uuid[UUID_LEN + 1];
        int64_t now = time_wall_msec();

        uuid_generate_hex(uuid);
        if (db_exec(db,
                    "INSERT INTO networkServiceProvider (uuid, name, "
                    "description, createDate, lastOpDate, type, "
                    "networkServiceTypes) VALUES (?1, 'VirtualRouter', "
                    "'virtual router network service provider', ?2, ?2, "
                    "'VirtualRouter', 'DHCP,DNS,SNAT,PortForwarding')",
                    "si", uuid, now) < 0) {
            return -1;
        }
    }
    return 0;
}
