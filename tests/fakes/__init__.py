"""In-memory fakes of every context's ports, and the bootstrapped app built on them.

One module per context (`tests.fakes.servers`...); everything is importable from here.
"""

from tests.fakes.app import FakeApp, fake_app, fake_settings
from tests.fakes.backups import (
    BackupsFakes,
    FakeBackupJobs,
    FakeBackupReadModel,
    FakeBackupStorage,
    FakeBackupsUnitOfWork,
    FakeProgress,
    FakeServerControl,
    FakeServerLookup,
)
from tests.fakes.core import (
    FakeClock,
    FakeEventLog,
    FakeRepository,
    FakeUnitOfWork,
    principal,
)
from tests.fakes.database import AccessRow, FakeDatabase
from tests.fakes.files import FakeFileHistory, FakeFileStore, FakeFilesUnitOfWork, FilesFakes
from tests.fakes.groups import (
    FakeAccessStore,
    FakeGroupsReadModel,
    FakeGroupsUnitOfWork,
    FakeProfiles,
    FakeSyncRequests,
    GroupsFakes,
    SyncRequest,
)
from tests.fakes.realtime import FakePubSubHub, FakeSocketAuthenticator
from tests.fakes.servers import (
    FakeJarStore,
    FakeNodeCapacity,
    FakeNodeGateway,
    FakeNodeServers,
    FakeReleaseCheck,
    FakeRuntimeStore,
    FakeServerListReadModel,
    FakeServersUnitOfWork,
    FakeServerTrees,
    FakeVersionCatalog,
    QueuedJob,
    ServersFakes,
    node_record,
    runnable_jar,
)
from tests.fakes.users import (
    FakeHasher,
    FakeRevocations,
    FakeUserReadModel,
    FakeUsersUnitOfWork,
    UsersFakes,
)

__all__ = [
    "AccessRow",
    "BackupsFakes",
    "FakeAccessStore",
    "FakeApp",
    "FakeBackupJobs",
    "FakeBackupReadModel",
    "FakeBackupStorage",
    "FakeBackupsUnitOfWork",
    "FakeClock",
    "FakeDatabase",
    "FakeEventLog",
    "FakeFileHistory",
    "FakeFileStore",
    "FakeFilesUnitOfWork",
    "FakeGroupsReadModel",
    "FakeGroupsUnitOfWork",
    "FakeHasher",
    "FakeJarStore",
    "FakeNodeCapacity",
    "FakeNodeGateway",
    "FakeNodeServers",
    "FakeProfiles",
    "FakeProgress",
    "FakePubSubHub",
    "FakeReleaseCheck",
    "FakeRepository",
    "FakeRevocations",
    "FakeRuntimeStore",
    "FakeServerControl",
    "FakeServerListReadModel",
    "FakeServerLookup",
    "FakeServerTrees",
    "FakeServersUnitOfWork",
    "FakeSocketAuthenticator",
    "FakeSyncRequests",
    "FakeUnitOfWork",
    "FakeUserReadModel",
    "FakeUsersUnitOfWork",
    "FakeVersionCatalog",
    "FilesFakes",
    "GroupsFakes",
    "QueuedJob",
    "ServersFakes",
    "SyncRequest",
    "UsersFakes",
    "fake_app",
    "fake_settings",
    "node_record",
    "principal",
    "runnable_jar",
]
