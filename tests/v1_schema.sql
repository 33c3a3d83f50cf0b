-- V1's SQLite schema (mmiura-2351/mc-server-dashboard-api v0.3.0, as create_all leaves it),
-- written from ../shared/reference/v1.md for the importer's tests.
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username VARCHAR(50) NOT NULL UNIQUE,
    email VARCHAR(255) NOT NULL UNIQUE,
    hashed_password VARCHAR(255) NOT NULL,
    role VARCHAR(8) NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT 1,
    is_approved BOOLEAN NOT NULL DEFAULT 0,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME,
    password_set_at DATETIME,
    token_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE refresh_tokens (
    id INTEGER PRIMARY KEY, token VARCHAR(255) NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id), expires_at DATETIME NOT NULL,
    created_at DATETIME, is_revoked BOOLEAN NOT NULL DEFAULT 0
);
CREATE TABLE servers (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    description TEXT,
    minecraft_version VARCHAR(20) NOT NULL,
    server_type VARCHAR(7) NOT NULL,
    status VARCHAR(8) NOT NULL DEFAULT 'stopped',
    directory_path VARCHAR(500) NOT NULL,
    port INTEGER NOT NULL,
    max_memory INTEGER NOT NULL,
    max_players INTEGER NOT NULL,
    owner_id INTEGER NOT NULL REFERENCES users(id),
    is_deleted BOOLEAN NOT NULL DEFAULT 0,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME
);
CREATE TABLE server_configurations (
    id INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id),
    configuration_key VARCHAR(100) NOT NULL,
    configuration_value TEXT NOT NULL,
    updated_at DATETIME,
    UNIQUE (server_id, configuration_key)
);
CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    description TEXT,
    type VARCHAR(9) NOT NULL,
    players JSON NOT NULL DEFAULT '[]',
    owner_id INTEGER NOT NULL REFERENCES users(id),
    is_template BOOLEAN NOT NULL DEFAULT 0,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME
);
CREATE TABLE server_groups (
    id INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id),
    group_id INTEGER NOT NULL REFERENCES groups(id),
    priority INTEGER NOT NULL DEFAULT 0,
    attached_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (server_id, group_id)
);
CREATE TABLE backups (
    id INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id),
    name VARCHAR(100) NOT NULL,
    description TEXT,
    file_path VARCHAR(500) NOT NULL,
    file_size INTEGER NOT NULL,
    backup_type VARCHAR(10) NOT NULL,
    status VARCHAR(9) NOT NULL,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE backup_schedules (
    id INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL UNIQUE REFERENCES servers(id),
    interval_hours INTEGER NOT NULL,
    max_backups INTEGER NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT 1,
    only_when_running BOOLEAN NOT NULL DEFAULT 1,
    last_backup_at DATETIME,
    next_backup_at DATETIME,
    created_at DATETIME,
    updated_at DATETIME
);
CREATE TABLE backup_schedule_logs (
    id INTEGER PRIMARY KEY, server_id INTEGER NOT NULL, action VARCHAR(20) NOT NULL,
    reason TEXT, old_config JSON, new_config JSON, executed_by_user_id INTEGER,
    created_at DATETIME
);
CREATE TABLE file_edit_history (
    id INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id),
    file_path VARCHAR(500) NOT NULL,
    version_number INTEGER NOT NULL,
    backup_file_path VARCHAR(500) NOT NULL,
    file_size INTEGER NOT NULL,
    content_hash VARCHAR(64),
    editor_user_id INTEGER REFERENCES users(id),
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    description VARCHAR(255),
    UNIQUE (server_id, file_path, version_number)
);
CREATE TABLE audit_logs (
    id INTEGER PRIMARY KEY,
    user_id INTEGER REFERENCES users(id),
    action VARCHAR(100) NOT NULL,
    resource_type VARCHAR(50) NOT NULL,
    resource_id INTEGER,
    details JSON,
    ip_address VARCHAR(45),
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE resource_visibility (
    id INTEGER PRIMARY KEY, resource_type VARCHAR(6) NOT NULL, resource_id INTEGER NOT NULL,
    visibility_type VARCHAR(14) NOT NULL, role_restriction VARCHAR(8),
    created_at DATETIME, updated_at DATETIME
);
CREATE TABLE resource_user_access (
    id INTEGER PRIMARY KEY, resource_visibility_id INTEGER NOT NULL REFERENCES resource_visibility(id),
    user_id INTEGER NOT NULL REFERENCES users(id), granted_by_user_id INTEGER, granted_at DATETIME
);
CREATE TABLE minecraft_versions (
    id INTEGER PRIMARY KEY, server_type VARCHAR(7) NOT NULL, version VARCHAR(20) NOT NULL,
    download_url VARCHAR(500) NOT NULL, is_active BOOLEAN NOT NULL DEFAULT 1
);
