# Debian packages of faultproxy and user-service (`./dev package`: CPack's DEB generator, one package
# per component). Version: the project's, the same that every --version prints. The package files
# (man pages, systemd units, copyright, changelog, configuration) live in packaging/.

if(NOT TARGET faultproxy OR NOT TARGET faultproxy-cli OR NOT TARGET user-service)
  return()
endif()

set(packaging_dir ${CMAKE_SOURCE_DIR}/packaging)
set(packaging_out ${CMAKE_BINARY_DIR}/packaging)

# Man pages and changelogs as Debian wants them: the version filled in, gzip -9n (no timestamp).
set(packaging_generated)
function(packaging_gzip source output)
  set(unzipped ${packaging_out}/${output})
  string(REGEX REPLACE "\\.gz$" "" unzipped ${unzipped})
  configure_file(${source} ${unzipped} @ONLY)
  add_custom_command(
    OUTPUT ${packaging_out}/${output}
    COMMAND gzip -9nfk ${unzipped}
    DEPENDS ${unzipped}
    COMMENT "Compressing ${output}")
  set(packaging_generated ${packaging_generated} ${packaging_out}/${output} PARENT_SCOPE)
endfunction()

set(VERSION ${PROJECT_VERSION})
packaging_gzip(${packaging_dir}/faultproxy.1 faultproxy.1.gz)
packaging_gzip(${packaging_dir}/faultproxy-cli.1 faultproxy-cli.1.gz)
packaging_gzip(${packaging_dir}/user-service.8 user-service.8.gz)
foreach(package IN ITEMS faultproxy user-service)
  set(PACKAGE ${package})
  packaging_gzip(${packaging_dir}/changelog.in ${package}/changelog.Debian.gz)
  # Files under /etc are the administrator's: dpkg keeps their edits on upgrade.
  file(WRITE ${packaging_out}/${package}/conffiles "/etc/${package}/config.json\n")
endforeach()
add_custom_target(package_files ALL DEPENDS ${packaging_generated})

install(TARGETS faultproxy faultproxy-cli RUNTIME DESTINATION bin COMPONENT faultproxy)
install(FILES ${packaging_out}/faultproxy.1.gz ${packaging_out}/faultproxy-cli.1.gz
        DESTINATION share/man/man1 COMPONENT faultproxy)
install(FILES ${packaging_dir}/faultproxy.service DESTINATION /lib/systemd/system COMPONENT faultproxy)
install(FILES ${packaging_dir}/faultproxy.json DESTINATION /etc/faultproxy RENAME config.json
        COMPONENT faultproxy)

install(TARGETS user-service RUNTIME DESTINATION bin COMPONENT user-service)
install(FILES ${packaging_out}/user-service.8.gz DESTINATION share/man/man8 COMPONENT user-service)
install(FILES ${packaging_dir}/user-service.service DESTINATION /lib/systemd/system COMPONENT user-service)
install(FILES ${CMAKE_SOURCE_DIR}/stack/user-service.example.json DESTINATION /etc/user-service
        RENAME config.json COMPONENT user-service)

foreach(package IN ITEMS faultproxy user-service)
  install(FILES ${packaging_dir}/copyright ${packaging_out}/${package}/changelog.Debian.gz
          DESTINATION share/doc/${package} COMPONENT ${package})
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME resilient-user-service)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "The resilient-user-service developers")
set(CPACK_PACKAGE_CONTACT "The resilient-user-service developers <maintainers@resilient-user-service.org>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL faultproxy user-service)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FAULTPROXY_PACKAGE_NAME faultproxy)
set(CPACK_DEBIAN_USER-SERVICE_PACKAGE_NAME user-service)
set(CPACK_DEBIAN_FAULTPROXY_PACKAGE_CONTROL_EXTRA ${packaging_out}/faultproxy/conffiles)
set(CPACK_DEBIAN_USER-SERVICE_PACKAGE_CONTROL_EXTRA ${packaging_out}/user-service/conffiles)
# The first line is the synopsis; CPack indents the rest as the extended description.
set(CPACK_COMPONENT_FAULTPROXY_DESCRIPTION
    "TCP fault-injection proxy with the Toxiproxy 2.12 API
faultproxy sits between a program and the services it depends on and
injects latency, bandwidth limits, cut or reset connections, packet and
TCP loss, and protocol-aware faults for Redis, MySQL and HTTP/1.1. Every
Toxiproxy client and toxiproxy-cli work with it unchanged; faultproxy-cli
is its command line client. It serves Prometheus metrics and a web
console on its API port.")
set(CPACK_COMPONENT_USER-SERVICE_DESCRIPTION
    "resilient user API over a Redis cache and MariaDB storage
user-service serves users over HTTP from a Redis cache (a master and a
replica, or found through Redis Sentinel) in front of MariaDB, and keeps
answering when its dependencies fail: deadlines on every call, circuit
breakers, fallbacks from cache to replica to storage, and a versioned
cache that never serves a value older than an acknowledged write.")

include(CPack)
